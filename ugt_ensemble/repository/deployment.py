"""`validate_deployment`: is a model repository ready to serve, and on which servers? Offline.

On top of `repository.rules` (configs parse into Triton's ModelConfig, ensemble rules, model files per
version), it checks what this project's models need at load time: the parameters each Python-backend
step reads, the `ugt_runtime` package its `model.py` imports, the catalog index it loads, every sealed data file
(catalogs, model files) against the size and sha256 recorded when it was written (`runtime.data_files`), a
native step's inputs and outputs against its ONNX file (`repository.model_io`); and it reports for which
server kinds (`repository.servers`) the repository is loadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ugt_ensemble.errors import UgtEnsembleError
from ugt_ensemble.repository.manifest import read_manifest_or_empty
from ugt_ensemble.repository.model_io import native_model_errors
from ugt_ensemble.repository.rules import check_repository, string_parameters
from ugt_ensemble.repository.servers import loadable_on
from ugt_ensemble.repository.version_rules import check_versions
from ugt_ensemble.repository.writer import RUNTIME_PACKAGE
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.data_files import folder_problems

#: A summary of the build manifest, in `info["build"]`.
MANIFEST_KEYS = ("generator", "created", "ensemble", "engine", "target_server", "catalog", "weights", "model_source")


def validate_deployment(model_repository: str | Path, model_name: str | None = None) -> dict[str, Any]:
    """{"valid": bool, "errors": [...], "info": {...}} for the repository (and `model_name` in it).

    `info` holds the models found ("models"), each ensemble's steps ("ensembles"), the server kinds that
    can load it ("loadable_on": kind -> reasons it cannot, empty when it can) and the build summary.
    """
    root = Path(model_repository)
    report = check_repository(root)
    errors = list(report.errors)
    info: dict[str, Any] = dict(report.info)
    if model_name is not None and model_name not in report.configs:
        errors.append(f"{root}: no model named {model_name!r} (found: {sorted(report.configs)})")
    info["ensembles"] = {
        name: [step.model_name for step in config.ensemble_scheduling.step]
        for name, config in report.configs.items() if config.platform == "ensemble"
    }  # fmt: skip
    for name, config in report.configs.items():
        params = string_parameters(config)
        for version in info["models"].get(name, {}).get("versions", []):
            folder = root / name / str(version)
            if config.backend == "python":
                errors.extend(_python_model_files(folder))
            if params.get("catalog_file"):
                errors.extend(_catalog(folder / params["catalog_file"]))
            errors.extend(folder_problems(folder))  # a model step's model files (nothing where none were sealed)
            if params.get("model_file") and not (folder / params["model_file"]).is_file():
                errors.append(f"{name}/{version}: missing {params['model_file']} (its model_file parameter)")
    errors.extend(check_versions(root, report.configs))
    errors.extend(native_model_errors(root, report.configs) if root.is_dir() else [])
    info["loadable_on"] = loadable_on(root, report.configs) if root.is_dir() else {}
    info["build"] = _manifest_summary(root)
    return {"valid": not errors, "errors": errors, "info": info}


def _python_model_files(folder: Path) -> list[str]:
    source = folder / "model.py"
    if not source.is_file():
        return []  # reported by the repository rules
    text = source.read_text(encoding="utf-8", errors="replace")
    if RUNTIME_PACKAGE in text and not (folder / RUNTIME_PACKAGE / "__init__.py").is_file():
        return [f"{folder}: model.py imports {RUNTIME_PACKAGE}, which is missing"]
    return []


def _catalog(path: Path) -> list[str]:
    """Problems of a catalog: a folder of constraint data (this build's: every file against its seal first), or
    an index file (the naive peer's)."""
    damaged = folder_problems(path, required=True) if path.is_dir() else []
    if damaged:
        return damaged
    try:
        ConstraintData.load(path, verify=False) if path.is_dir() else CatalogIndex.load(path)
    except UgtEnsembleError as exc:
        return [str(exc)]
    return []


def _manifest_summary(root: Path) -> dict[str, Any]:
    manifest = read_manifest_or_empty(root)
    return {key: manifest.get(key) for key in MANIFEST_KEYS if key in manifest}
