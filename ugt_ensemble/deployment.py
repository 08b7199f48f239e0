"""`validate_deployment`: is a model repository ready to serve? Offline, no server needed.

On top of `repository.rules` (configs parse into Triton's ModelConfig, ensemble rules, model files per
version), it checks what this project's models need at load time: the modules a Python-backend
`model.py` imports from its folder, and the catalog index named in a model's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ugt_ensemble.errors import InputFileError
from ugt_ensemble.repository.manifest import read_manifest
from ugt_ensemble.repository.rules import check_repository
from ugt_ensemble.repository.writer import RUNTIME_PACKAGE
from ugt_ensemble.runtime.catalog_index import CatalogIndex, CatalogIndexError


def validate_deployment(model_repository: str | Path, model_name: str | None = None) -> dict[str, Any]:
    """{"valid": bool, "errors": [...], "info": {...}} for the repository (and `model_name` in it)."""
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
        versions = info["models"].get(name, {}).get("versions", [])
        params = {key: value.string_value for key, value in config.parameters.items()}
        for version in versions:
            folder = root / name / str(version)
            if config.backend == "python":
                errors.extend(_python_model_files(folder))
            if "catalog_file" in params:
                errors.extend(_catalog(folder / params["catalog_file"]))
    info["build"] = _manifest_summary(root)
    return {"valid": not errors, "errors": errors, "info": info}


def _python_model_files(folder: Path) -> list[str]:
    source = folder / "model.py"
    if not source.is_file():
        return []  # reported by the repository rules
    text = source.read_text(encoding="utf-8", errors="replace")
    missing = []
    if "from triton_io import" in text and not (folder / "triton_io.py").is_file():
        missing.append(f"{folder}: model.py imports triton_io, which is missing")
    if RUNTIME_PACKAGE in text and not (folder / RUNTIME_PACKAGE / "__init__.py").is_file():
        missing.append(f"{folder}: model.py imports {RUNTIME_PACKAGE}, which is missing")
    return missing


def _catalog(path: Path) -> list[str]:
    try:
        CatalogIndex.load(path)
    except CatalogIndexError as exc:
        return [str(exc)]
    return []


def _manifest_summary(root: Path) -> dict[str, Any]:
    try:
        manifest = read_manifest(root)
    except InputFileError:
        return {}
    keys = ("generator", "created", "ensemble", "engine", "catalog", "weights", "tensorrt_static_check")
    return {key: manifest.get(key) for key in keys}
