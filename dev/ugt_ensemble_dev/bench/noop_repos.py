"""The two repositories of the no-op benchmark, copied from a built one (which stays untouched).

- the no-op repository: the ensemble, preprocess and postprocess exactly as built; the model step keeps its
  config.pbtxt (names, dtypes, dims, batching, instances) and its model.py becomes `constant_step`, which answers
  the first K catalog items' codes with descending scores: postprocess does its full work on valid codes;
- the two-hop floor: the same ensemble and step configs, every step a `constant_step` that returns what the real
  step returns for one representative history (captured from the served no-op repository): the same tensors
  between the same steps, and no work but the hops.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from ugt_ensemble.repository.inspect import RepositoryInfo

Rows = dict[str, np.ndarray]  # output name -> one row (no batch dimension)
#: The constant step's source (not imported here: it imports the backend's utilities) and the file it reads.
CONSTANT_STEP = Path(__file__).with_name("constant_step.py")
CONSTANTS_FILE = "constants.npz"  # constant_step.CONSTANTS_FILE
#: The manifest a build writes at the repository's root (the serving context reads the model names there).
MANIFEST = "ugt_build.json"


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link a file (catalogs can be large), copying where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _versions(step_dir: Path) -> list[str]:
    return sorted(p.name for p in step_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _copy_manifest(source: Path, dest: Path, note: str) -> None:
    """The build manifest, without the naive peer (not copied), with a note on what this copy is."""
    manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    if isinstance(manifest.get("triton"), dict):
        manifest["triton"]["naive_peer"] = False
    manifest["benchmark_copy"] = note
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def write_constant_step(source_step: Path, dest_step: Path, rows: Mapping[str, np.ndarray]) -> Path:
    """`dest_step`: `source_step`'s config.pbtxt, and in each of its version folders the constant step
    answering `rows`."""
    dest_step.mkdir(parents=True)
    shutil.copy2(source_step / "config.pbtxt", dest_step / "config.pbtxt")
    for version in _versions(source_step):
        folder = dest_step / version
        folder.mkdir()
        shutil.copy2(CONSTANT_STEP, folder / "model.py")
        np.savez(folder / CONSTANTS_FILE, **{name: np.asarray(row) for name, row in rows.items()})
    return dest_step


def noop_answer(info: RepositoryInfo) -> Rows:
    """What the no-op model step answers: the first K catalog items' codes (K recommendations; the list wraps
    round a smaller catalog, and postprocess drops the repeats) and scores descending from 0."""
    k = info.num_recommendations
    codes = np.resize(np.asarray(info.index.codes, dtype=np.int64), (k, 3))
    return {"recommendations": codes, "scores": -np.arange(k, dtype=np.float32) / k}


def make_noop_repository(info: RepositoryInfo, dest: Path) -> Path:
    """Copy `info`'s repository to `dest` with the model step replaced by the no-op answer (see the module)."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; the benchmark writes its copies into a fresh folder")
    dest.mkdir(parents=True)
    for model in (info.ensemble, info.preprocess, info.postprocess):
        shutil.copytree(info.path / model, dest / model, copy_function=_link_or_copy, ignore=_no_caches)
    write_constant_step(info.path / info.model_step, dest / info.model_step, noop_answer(info))
    _copy_manifest(info.path, dest, "no-op model step (ugt_ensemble_dev.bench.noop_repos)")
    return dest


def make_floor_repository(info: RepositoryInfo, dest: Path, rows_by_step: Mapping[str, Rows]) -> Path:
    """Copy `info`'s ensemble and step configs to `dest`, each step a constant step answering its
    `rows_by_step` entry (preprocess, model step and postprocess, by model name)."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; the benchmark writes its copies into a fresh folder")
    dest.mkdir(parents=True)
    shutil.copytree(info.path / info.ensemble, dest / info.ensemble, ignore=_no_caches)
    for step in (info.preprocess, info.model_step, info.postprocess):
        write_constant_step(info.path / step, dest / step, rows_by_step[step])
    _copy_manifest(info.path, dest, "two-hop floor: constant steps (ugt_ensemble_dev.bench.noop_repos)")
    return dest


def _no_caches(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


def perf_histories(input_data: Path) -> list[str]:
    """The HISTORY documents of a perf_analyzer input-data file (as `build` writes them)."""
    rows = json.loads(Path(input_data).read_text(encoding="utf-8"))["data"]
    return [row["HISTORY"]["content"][0] for row in rows]


def capture_floor_rows(url: str, info: RepositoryInfo, histories: list[str]) -> dict[str, Rows]:
    """What each step of the served no-op repository at `url` emits for one history: the one whose packed
    length is the median of `histories` (preprocess is called directly for each, postprocess on the no-op
    answer). Model name -> output name -> one row."""
    packed = [_infer(url, info, info.preprocess, {"HISTORY": np.array([[h.encode()]], dtype=object)})
              for h in histories]  # fmt: skip
    packed.sort(key=lambda outputs: next(iter(outputs.values())).shape[-1])
    answer = noop_answer(info)
    post = _infer(url, info, info.postprocess, {name: row[None] for name, row in answer.items()})
    chosen = packed[len(packed) // 2]
    return {info.preprocess: chosen, info.model_step: answer, info.postprocess: post}


def _infer(url: str, info: RepositoryInfo, model: str, tensors: Mapping[str, np.ndarray]) -> Rows:
    """Every output of `model` (its config's) for one request of `tensors`, as rows without the batch dimension."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import np_to_triton_dtype

    from ugt_ensemble.repository.rules import read_config

    names = [output.name for output in read_config(info.path / model / "config.pbtxt").output]
    inputs = []
    for name, value in tensors.items():
        tensor = grpcclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    with grpcclient.InferenceServerClient(url) as client:
        result = client.infer(model, inputs, outputs=[grpcclient.InferRequestedOutput(n) for n in names])
    return {name: result.as_numpy(name)[0] for name in names}
