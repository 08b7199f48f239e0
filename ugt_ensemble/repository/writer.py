"""Write the model repository: configs, Python-backend adapters, the runtime copy and data files.

A build is written into a staging directory beside the output and moved into place only after
every check passed, so a failed build never leaves a half-written repository behind. Only the
model directories listed in the previous build's manifest are replaced; other files stay.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ugt_ensemble.config import PYTHON_ENGINES, BuildConfig
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.repository.render import CATALOG_FILE, render_configs
from ugt_ensemble.runtime.catalog_index import CatalogIndex

LOGGER = logging.getLogger(__name__)
MANIFEST = "ugt_build.json"
RUNTIME_PACKAGE = "ugt_runtime"


def python_models(config: BuildConfig) -> dict[str, str]:
    """model name -> adapter source in `ugt_ensemble/backends/` for the Python-backend models."""
    t = config.triton
    models = {t.preprocess_name: "preprocess.py", t.postprocess_name: "postprocess.py"}
    if config.export.engine in PYTHON_ENGINES:
        models[t.model_name] = "model_step.py"
    if t.naive_peer:
        models[t.naive_peer_name] = "naive_peer.py"
    return models


def write_models(root: Path, config: BuildConfig, model: UGTConfig, index: CatalogIndex) -> list[Path]:
    """Write every config.pbtxt and each Python model's files under `root`; returns the files written."""
    written = []
    for name, text in render_configs(config, model).items():
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        path = root / name / "config.pbtxt"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for name, adapter in python_models(config).items():
        written += _copy_python_model(root / name / "1", adapter)
    with_catalog = [config.triton.preprocess_name, config.triton.postprocess_name]
    if config.triton.naive_peer:
        with_catalog.append(config.triton.naive_peer_name)
    for name in with_catalog:
        path = root / name / "1" / CATALOG_FILE
        index.save(path)
        written.append(path)
    return written


def _copy_python_model(version_dir: Path, adapter: str) -> list[Path]:
    backends = importlib.resources.files("ugt_ensemble") / "backends"
    runtime = importlib.resources.files("ugt_ensemble") / "runtime"
    copies = {version_dir / "model.py": backends / adapter, version_dir / "triton_io.py": backends / "triton_io.py"}
    for source in runtime.iterdir():
        if source.name.endswith(".py"):
            copies[version_dir / RUNTIME_PACKAGE / source.name] = source
    for target, source in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return list(copies)


class StagedRepository:
    """A staging directory for a build of `output_dir`, committed atomically per model."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir).absolute()
        self.path = self.output_dir.parent / f".{self.output_dir.name}.staging-{os.getpid()}"

    def __enter__(self) -> StagedRepository:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, model_names: list[str], manifest: dict[str, Any]) -> Path:
        """Replace the previous build's models with the staged ones and write the manifest."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name in sorted(set(model_names) | set(previous_models(self.output_dir))):
            shutil.rmtree(self.output_dir / name, ignore_errors=True)
        for name in model_names:
            os.replace(self.path / name, self.output_dir / name)
        manifest_path = write_manifest(self.output_dir, manifest)
        _warn_about_foreign_models(self.output_dir, model_names)
        return manifest_path


def read_manifest(repository: Path) -> Any:
    """The build manifest (`ugt_build.json`) of `repository`; InputFileError naming the file if unreadable."""
    path = Path(repository) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: cannot read the build manifest ({exc})") from None


def write_manifest(repository: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest` as `repository`/ugt_build.json."""
    path = Path(repository) / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def previous_models(output_dir: Path) -> list[str]:
    """Model directories a previous build wrote into `output_dir` (from its manifest)."""
    try:
        return list(read_manifest(output_dir)["models"])
    except (InputFileError, KeyError, TypeError):
        return []


def _warn_about_foreign_models(output_dir: Path, ours: list[str]) -> None:
    foreign = sorted(p.name for p in output_dir.iterdir() if (p / "config.pbtxt").is_file() and p.name not in ours)
    if foreign:
        LOGGER.warning(
            "%s also holds model(s) %s that this build did not write; tritonserver will load them too",
            output_dir,
            foreign,
        )
