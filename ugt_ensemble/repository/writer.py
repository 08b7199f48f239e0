"""Write the model repository's files: configs, the Python-backend models and their runtime, catalogs.

The Python-backend steps' `model.py` files are committed sources in the top-level `ensemble/` folder
(shipped with the package as `ugt_ensemble.ensemble`); a build copies them, and the numpy runtime as
`ugt_runtime/`, into each version folder, so the repository needs nothing of this package to run.
`build` writes into a staging directory (`repository.staging`) that replaces the previous build only
after every check passed.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import py_compile
from importlib.resources.abc import Traversable
from pathlib import Path

from ugt_ensemble.config import BuildConfig
from ugt_ensemble.repository.peer_hook import naive_peer
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import CATALOG_FILE

RUNTIME_PACKAGE = "ugt_runtime"
#: The committed model.py of each Python-backend step, by role (in `ensemble/<step>/1/`).
STEP_SOURCES = {"preprocess": "preprocess", "model": "ugt_trt", "postprocess": "postprocess"}


def step_source(role: str) -> Traversable:
    """The committed `model.py` of a Python-backend step: "preprocess", "model" or "postprocess"."""
    return importlib.resources.files("ugt_ensemble.ensemble") / STEP_SOURCES[role] / "1" / "model.py"


def python_models(config: BuildConfig) -> dict[str, Traversable]:
    """model name -> the model.py source of each Python-backend model of the build."""
    t = config.triton
    models = {t.preprocess_name: step_source("preprocess"), t.postprocess_name: step_source("postprocess")}
    if t.python_model_step:
        models[t.step_name] = step_source("model")
    if t.naive_peer:
        models[t.naive_peer_name] = naive_peer().model_source()
    return models


def static_files(config: BuildConfig, version: int = 1) -> dict[str, bytes]:
    """Relative path -> bytes of the files a build of `config` copies unchanged: each `model.py`, and the
    runtime package beside those that import it (all but the naive peer, which imports the installed packages)."""
    runtime = [s for s in (importlib.resources.files("ugt_ensemble") / "runtime").iterdir() if s.name.endswith(".py")]
    files = {}
    for name, source in python_models(config).items():
        files[f"{name}/{version}/model.py"] = source.read_bytes()
        if name != config.triton.naive_peer_name:
            for module in runtime:
                files[f"{name}/{version}/{RUNTIME_PACKAGE}/{module.name}"] = module.read_bytes()
    return files


def write_models(root: Path, config: BuildConfig, index: CatalogIndex, versions: dict[str, int] | None = None) -> None:
    """Write every config.pbtxt, and version 1 of each model's files, under `root`."""
    for name, text in render_configs(config, versions).items():
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        (root / name / "config.pbtxt").write_text(text, encoding="utf-8")
    write_version_files(root, config, index, 1)


def write_version_files(root: Path, config: BuildConfig, index: CatalogIndex, version: int) -> None:
    """The files of one version of each model: the Python models' sources and runtime, the catalogs."""
    for relative, data in static_files(config, version).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    t = config.triton
    for name in [t.preprocess_name, t.postprocess_name] + ([t.naive_peer_name] if t.naive_peer else []):
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        index.save(root / name / str(version) / CATALOG_FILE)
    precompile(root, config, version)


def precompile(root: Path, config: BuildConfig, version: int = 1) -> None:
    """Write the bytecode of every copied module now (hash-checked, so it stays valid after the move):
    a stub that writes it later changes its version folder's time, and Triton then reloads that version
    in full on the next load."""
    for relative in static_files(config, version):
        source = root / relative
        target = importlib.util.cache_from_source(str(source))
        py_compile.compile(
            str(source), cfile=target, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
        )
