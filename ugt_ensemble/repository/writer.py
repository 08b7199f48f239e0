"""Write the model repository's files: configs, the Python-backend models and their runtime, catalogs.

The Python-backend steps' `model.py` files are committed sources in the top-level `ensemble/` folder
(shipped with the package as `ugt_ensemble.ensemble`); a build copies them, and the numpy runtime as
`ugt_runtime/`, into each version folder, so the repository needs nothing of this package to run.
`build` writes into a staging directory (`repository.staging`) that replaces the previous build only
after every check passed. Each version's data is sealed (`runtime.data_files`): the catalog folder by
`ConstraintData.save`, the model step's model files by `seal_model_files`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import py_compile
import shutil
from importlib.resources.abc import Traversable
from pathlib import Path

from ugt_ensemble.config import BuildConfig
from ugt_ensemble.repository.peer_hook import naive_peer
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import CATALOG_DIR, CATALOG_FILE
from ugt_ensemble.runtime.data_files import SEAL_FILE, seal

RUNTIME_PACKAGE = "ugt_runtime"
#: The committed model.py of each Python-backend step, by role (in `ensemble/<step>/1/`).
STEP_SOURCES = {"preprocess": "preprocess", "model": "ugt_trt", "postprocess": "postprocess"}
#: What a version folder holds besides model files: copied code, the catalog (sealed on its own), the seal.
NOT_MODEL_FILES = frozenset({"model.py", RUNTIME_PACKAGE, "__pycache__", CATALOG_DIR, SEAL_FILE})


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


def write_models(
    root: Path, config: BuildConfig, data: ConstraintData | CatalogIndex, versions: dict[str, int] | None = None
) -> None:
    """Write every config.pbtxt, and version 1 of each model's files, under `root`."""
    for name, text in render_configs(config, versions).items():
        (root / name / "1").mkdir(parents=True, exist_ok=True)
        (root / name / "config.pbtxt").write_text(text, encoding="utf-8")
    write_version_files(root, config, data, 1)


def write_version_files(root: Path, config: BuildConfig, data: ConstraintData | CatalogIndex, version: int) -> None:
    """The files of one version of each model: the Python models' sources and runtime, the catalog data."""
    for relative, content in static_files(config, version).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    data = data if isinstance(data, ConstraintData) else ConstraintData.build(data, {})
    t = config.triton
    steps = [t.preprocess_name, t.postprocess_name] + ([t.step_name] if t.model_step.rules_in_search else [])
    write_catalog_data(data, [root / name / str(version) for name in steps])
    if t.naive_peer:
        (root / t.naive_peer_name / str(version)).mkdir(parents=True, exist_ok=True)
        data.index.save(root / t.naive_peer_name / str(version) / CATALOG_FILE)
    precompile(root, config, version)
    seal_model_files(root / t.step_name / str(version))


def seal_model_files(folder: Path) -> None:
    """Seal the model files of a model step's version folder, written before (its ONNX file and external data,
    an unbaked export, an engine): read-only, sizes and hashes in `runtime.data_files.SEAL_FILE`."""
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).parts[0] not in NOT_MODEL_FILES and not p.name.startswith(".")
    ]
    if names:
        seal(folder, names)


def write_catalog_data(data: ConstraintData, version_dirs: list[Path]) -> None:
    """Save `data` once, in the first version folder's `catalog/`, and hard-link its files into the others'
    (copies where the filesystem has no hard links): every step then maps the same pages, one copy in memory."""
    first = version_dirs[0] / CATALOG_DIR
    first.parent.mkdir(parents=True, exist_ok=True)
    data.save(first)
    for folder in version_dirs[1:]:
        link_tree(first, folder / CATALOG_DIR)


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of `source` into `target` (a copy where a link cannot be made)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        try:
            os.link(path, target / path.name)
        except OSError:
            shutil.copy2(path, target / path.name)


def precompile(root: Path, config: BuildConfig, version: int = 1) -> None:
    """Write the bytecode of every copied module now (hash-checked, so it stays valid after the move):
    a stub that writes it later changes its version folder's time, and Triton then reloads that version
    in full on the next load. Each distinct source is compiled once (the steps share the runtime's modules):
    hash-checked bytecode depends on the source's bytes alone, and an import names the file it found."""
    compiled: dict[bytes, bytes] = {}
    for relative, content in static_files(config, version).items():
        source = root / relative
        target = Path(importlib.util.cache_from_source(str(source)))
        if content in compiled:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(compiled[content])
            continue
        py_compile.compile(
            str(source), cfile=str(target), doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )  # fmt: skip
        compiled[content] = target.read_bytes()
