"""Write the model repository's files: configs, Python-backend adapters, the runtime copy, catalogs.

`build` writes them into a staging directory (`repository.staging`) that replaces the previous build
only after every check passed.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ugt_ensemble.config import PYTHON_ENGINES, BuildConfig
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.repository.render import CATALOG_FILE, render_configs
from ugt_ensemble.runtime.catalog_index import CatalogIndex

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
    written += _copy_static_files(root, config)
    with_catalog = [config.triton.preprocess_name, config.triton.postprocess_name]
    if config.triton.naive_peer:
        with_catalog.append(config.triton.naive_peer_name)
    for name in with_catalog:
        path = root / name / "1" / CATALOG_FILE
        index.save(path)
        written.append(path)
    return written


def static_files(config: BuildConfig) -> dict[str, bytes]:
    """Relative path -> bytes of the files a build of `config` copies unchanged into its Python models:
    each `model.py` adapter, `triton_io.py` and the runtime package."""
    backends = importlib.resources.files("ugt_ensemble") / "backends"
    runtime = [s for s in (importlib.resources.files("ugt_ensemble") / "runtime").iterdir() if s.name.endswith(".py")]
    files = {}
    for name, adapter in python_models(config).items():
        files[f"{name}/1/model.py"] = (backends / adapter).read_bytes()
        files[f"{name}/1/triton_io.py"] = (backends / "triton_io.py").read_bytes()
        for source in runtime:
            files[f"{name}/1/{RUNTIME_PACKAGE}/{source.name}"] = source.read_bytes()
    return files


def _copy_static_files(root: Path, config: BuildConfig) -> list[Path]:
    written = []
    for relative, data in static_files(config).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written
