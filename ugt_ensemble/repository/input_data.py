"""perf_analyzer `--input-data` files of real-shaped requests, written beside a built repository.

perf_analyzer's random data fails on this repository: random BYTES are no JSON history, and random
integers fall outside the codebooks. `build` therefore writes, into `<repository>_tools/` (outside the
model repository, which Triton would scan for models):
- `perf_input_<ensemble>.json`: HISTORY documents of catalog items, from empty to a few hundred events;
- `perf_input_<ensemble>_rules.json`: the same histories as documents with business rules (exclusions,
  exclude-history, and the repository's own item sets), where the repository's model honours rules;
- `perf_input_<model step>.json`: the same histories packed as preprocess packs them (the six encoder
  tensors, valid codes of the catalog), for profiling the model step alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.histories import LengthDistribution, history_json, random_history
from ugt_ensemble.repository.inspect import RepositoryInfo, latest_version
from ugt_ensemble.repository.rules import read_config, string_parameters
from ugt_ensemble.runtime.constraint_data import META_FILE
from ugt_ensemble.runtime.history import parse_history
from ugt_ensemble.runtime.packing import pack_histories
from ugt_ensemble.runtime.parameters import PreprocessParameters

#: Histories per file, and their lengths (log-uniform, capped at the repository's max_seq_length).
HISTORIES = 16
LENGTHS = "4-300"
_CONVERT = {"f": float, "i": int, "u": int, "b": bool}  # numpy dtype kind -> JSON value


@dataclass(frozen=True)
class InputDataFiles:
    """The perf_analyzer input-data files of one repository (`ensemble_rules`: histories with rules)."""

    ensemble: Path
    model_step: Path
    ensemble_rules: Path


def tools_dir(repository: str | Path) -> Path:
    """Where the tool files of `repository` go: a sibling folder `<name>_tools`."""
    path = Path(repository).absolute()
    return path.parent / f"{path.name}_tools"


def input_data_files(repository: str | Path, info: RepositoryInfo | None = None) -> InputDataFiles:
    """The paths of the input-data files of `repository` (written or not)."""
    info = info or RepositoryInfo.read(repository)
    folder = tools_dir(repository)
    return InputDataFiles(
        folder / f"perf_input_{info.ensemble}.json",
        folder / f"perf_input_{info.model_step}.json",
        folder / f"perf_input_{info.ensemble}_rules.json",
    )


def sample_histories(info: RepositoryInfo, count: int = HISTORIES, seed: int = 0) -> list[str]:
    """`count` seeded HISTORY documents over the repository's catalog: an empty one, then 4..300 events."""
    rng = np.random.default_rng(seed)
    low, high = LengthDistribution(LENGTHS).bounds
    lengths = LengthDistribution(f"{min(low, info.packing.max_seq_length)}-{min(high, info.packing.max_seq_length)}")
    sizes = [0, *lengths.sample(count - 1, rng).tolist()]
    return [history_json(random_history(info.index.item_ids, int(n), rng)) for n in sizes]


def write_input_data_files(repository: str | Path, seed: int = 0) -> InputDataFiles:
    """Write both input-data files of `repository` (a built one) and return their paths."""
    info = RepositoryInfo.read(repository)
    files = input_data_files(repository, info)
    histories = sample_histories(info, seed=seed)
    write_input_data(files.ensemble, [{"HISTORY": h} for h in histories])
    packed = pack_histories([parse_history(h) for h in histories], info.index, info.packing)
    rows = []
    for i in range(len(histories)):
        row = packed.rows(i, i + 1)
        rows.append({name: tensor[0] for name, tensor in row.items()})
    write_input_data(files.model_step, rows)
    preprocess = _preprocess_parameters(info)
    if preprocess.rules_in_search:
        rules = rule_documents(histories, info.index.item_ids, _set_names(info, preprocess.catalog_file), seed)
        write_input_data(files.ensemble_rules, [{"HISTORY": document} for document in rules])
    else:
        files.ensemble_rules.unlink(missing_ok=True)  # a rebuild without rules leaves no stale file
    return files


def rule_documents(
    histories: Sequence[str], item_ids: np.ndarray, set_names: Sequence[str], seed: int = 0
) -> list[str]:
    """Each history as a document with rules: every other one excludes 20 catalog items, every other one its own
    history, and (where the repository has item sets) every third draws from one of them, in turn."""
    rng = np.random.default_rng(seed + 1)
    documents = []
    for i, history in enumerate(histories):
        document: dict = {"events": json.loads(history)}
        if i % 2 == 0:
            document["exclude"] = [int(x) for x in rng.choice(item_ids, min(20, len(item_ids)), replace=False)]
        if i % 2 == 1:
            document["exclude_history"] = True
        if set_names and i % 3 == 0:
            document["sets"] = [set_names[(i // 3) % len(set_names)]]
        documents.append(json.dumps(document))
    return documents


def _preprocess_parameters(info: RepositoryInfo) -> PreprocessParameters:
    path = info.path / info.preprocess / "config.pbtxt"
    return PreprocessParameters.from_config(string_parameters(read_config(path)), str(path))


def _set_names(info: RepositoryInfo, catalog_file: str) -> list[str]:
    """The item sets of the served catalog (its constraint data's description), [] if it has none."""
    folder = info.path / info.preprocess / str(latest_version(info.path / info.preprocess)) / catalog_file
    try:
        return list(json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("set_names", []))
    except (OSError, ValueError, AttributeError):
        return []


def write_input_data(path: Path, rows: Sequence[Mapping[str, np.ndarray | bytes | str]]) -> Path:
    """Write a perf_analyzer `--input-data` JSON file: one step per row, used round-robin.

    bytes / str become a BYTES tensor of shape [1]; arrays become their flattened content and shape
    (without the batch dimension), floats as floats and integers as integers.
    """
    if not rows:
        raise ConfigError("perf_analyzer input data needs at least one row")
    data = [{name: _tensor_entry(name, value) for name, value in row.items()} for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    return path


def _tensor_entry(name: str, value: np.ndarray | bytes | str) -> dict[str, list]:
    if isinstance(value, (bytes, str)):
        return {"content": [_text(name, value)], "shape": [1]}
    array = np.asarray(value)
    kind = array.dtype.kind
    if kind not in _CONVERT and kind not in "OSU":
        raise ConfigError(f"input {name}: unsupported dtype {array.dtype} (allowed: bool, int, float, bytes, str)")
    convert = _CONVERT.get(kind) or (lambda x: _text(name, x))
    return {"content": [convert(x) for x in array.reshape(-1)], "shape": list(array.shape)}


def _text(name: str, value: object) -> str:
    try:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"input {name}: bytes are not UTF-8 ({exc})") from None
