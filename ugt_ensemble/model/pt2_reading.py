"""The entries a .pt2 may hold, and torch reading only those, with unpickling made impossible.

`torch.export.save` writes one program, named "model", as a fixed set of entries below one top folder:
the graph `models/model.json`, its sample inputs `data/sample_inputs/model.pt`, raw tensor bytes
`data/weights/weight_<n>` and `data/constants/tensor_<n>`, and two payload configs that name them. torch's
loader reads every `models/<name>.json` as a program, reads `data/weights/<name>.pt` and
`data/constants/<name>.pt` as legacy pickles, and retries any `torch.load` with `weights_only=False` when the
safe load fails: a second program named `weight_x` runs a pickle. So (1) `check_archive_layout` accepts only
the exact entry names torch writes for the one program and payload configs whose every path is a raw entry of
that form, and (2) `loading_without_unpickling` lets torch read only those entries while any unpickling call
(`torch.load(weights_only=False)`, `pickle.loads`, TorchScript's object loader) raises.
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.export.pt2_archive import _package

from ugt_ensemble.errors import InputFileError

#: The one program torch writes (`torch.export.save` names it "model") and where its parts live.
PROGRAM = "model"
GRAPH = f"models/{PROGRAM}.json"
SAMPLE_INPUTS = f"data/sample_inputs/{PROGRAM}.pt"
#: Payload configs: (config entry, folder of the raw tensors it names, the tensors' name prefix).
PAYLOADS = (
    (f"data/weights/{PROGRAM}_weights_config.json", "data/weights/", "weight_"),
    (f"data/constants/{PROGRAM}_constants_config.json", "data/constants/", "tensor_"),
)
REQUIRED = ("archive_format", "archive_version", GRAPH, SAMPLE_INPUTS, *(config for config, _, _ in PAYLOADS))
OPTIONAL = ("byteorder", ".data/version", ".data/serialization_id")
_INDEX = "(?:0|[1-9][0-9]{0,8})"
_PAYLOAD_NAME = re.compile(rf"(?:data/weights/weight_|data/constants/tensor_){_INDEX}")
_SHOWN = 4
#: torch's loader is patched while it runs: one load at a time.
_LOCK = threading.Lock()


def check_archive_layout(path: Path, archive: zipfile.ZipFile, root: str, extras: tuple[str, ...]) -> list[str]:
    """InputFileError naming the entry unless `archive` (top folder `root`) holds exactly the entries torch
    writes for its one program (plus `extra/<name>` for `extras`), and its payload configs name only raw
    tensor entries it holds. Returns the entries, relative to `root`, that torch may read."""
    allowed = {*REQUIRED, *OPTIONAL, *(f"extra/{name}" for name in extras)}
    inside = [name[len(root) + 1 :] if name.startswith(f"{root}/") else name for name in archive.namelist()]
    strange = [f"{root}/{name}" for name in inside if name not in allowed and not _PAYLOAD_NAME.fullmatch(name)]
    if strange:
        more = f" (and {len(strange) - _SHOWN} more)" if len(strange) > _SHOWN else ""
        raise InputFileError(
            f"model {path}: holds {', '.join(strange[:_SHOWN])}{more}, which torch.export.save does not write for "
            f"its one program '{PROGRAM}'; refused (torch would read them as programs or pickles)"
        )
    missing = [f"{root}/{name}" for name in REQUIRED if name not in inside]
    if missing:
        raise InputFileError(f"model {path}: has no {', '.join(missing)}; not a .pt2 written by torch.export.save")
    named: set[str] = set()
    for config, folder, prefix in PAYLOADS:
        named |= _check_payload_config(path, archive, f"{root}/{config}", folder, prefix, set(inside))
    unnamed = [f"{root}/{name}" for name in inside if _PAYLOAD_NAME.fullmatch(name) and name not in named]
    if unnamed:
        raise InputFileError(
            f"model {path}: holds {', '.join(unnamed[:_SHOWN])}, which no payload config names; refused"
        )
    _check_sample_inputs(path, archive, f"{root}/{SAMPLE_INPUTS}")
    return inside


def _check_payload_config(
    path: Path, archive: zipfile.ZipFile, name: str, folder: str, prefix: str, entries: set[str]
) -> set[str]:
    """The entries the payload config `name` names (InputFileError unless each is a raw, not pickled, tensor
    `<folder><prefix><n>` that the archive holds)."""
    try:
        config = json.loads(archive.read(name))
        items = config["config"].items()
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise InputFileError(f"model {path}: {name} is not a payload config") from None
    named = set()
    for key, entry in items:
        where = f"{name} entry {str(key)[:80]!r}"
        if not isinstance(entry, dict) or entry.get("use_pickle") is not False:
            raise InputFileError(
                f"model {path}: {where} is pickled or not raw tensor bytes; refused (it would run code)"
            )
        target = f"{folder}{entry.get('path_name')}"
        if not (target.startswith(folder + prefix) and _PAYLOAD_NAME.fullmatch(target)):
            shown = str(entry.get("path_name"))[:80]
            raise InputFileError(f"model {path}: {where} names {shown!r}; torch writes {prefix}<n> there; refused")
        if target not in entries:
            raise InputFileError(f"model {path}: {where} names {target}, which the archive does not hold")
        if not isinstance(entry.get("tensor_meta"), dict):
            raise InputFileError(f"model {path}: {where} has no tensor_meta; refused")
        named.add(target)
    return named


def _check_sample_inputs(path: Path, archive: zipfile.ZipFile, name: str) -> None:
    """InputFileError unless the sample inputs `name` load with torch's weights-only unpickler."""
    try:
        torch.load(io.BytesIO(archive.read(name)), weights_only=True)
    except Exception:  # noqa: BLE001 - whatever the weights-only unpickler refuses
        raise InputFileError(f"model {path}: its sample inputs {name} are pickled objects; refused") from None


@contextmanager
def loading_without_unpickling(path: Path, readable: list[str]) -> Iterator[None]:
    """While torch's .pt2 loader runs inside: it reads only the entries `readable`, every `torch.load` is
    weights-only, and any call that would unpickle raises InputFileError naming the entry it came from."""
    allowed, read = frozenset(readable), dict[str, bytes]()
    real_read, real_load = _package.PT2ArchiveReader.read_bytes, torch.load

    def read_bytes(reader: Any, name: str) -> bytes:
        if name not in allowed:
            raise InputFileError(f"model {path}: torch asked for the entry {name}, which was not checked; refused")
        read[name] = real_read(reader, name)
        return read[name]

    def weights_only_load(f: Any, *args: Any, weights_only: bool | None = None, **kwargs: Any) -> Any:
        if weights_only is False:
            refuse(f)
        return real_load(f, *args, weights_only=True, **kwargs)

    def refuse(data: Any = b"", *_: Any, **__: Any) -> Any:
        data = data.getvalue() if hasattr(data, "getvalue") else data
        source = next((name for name, held in read.items() if held == data), "an entry")
        raise InputFileError(f"model {path}: torch would unpickle {source}; refused (it would run code)")

    replacements = (
        (_package.PT2ArchiveReader, "read_bytes", read_bytes),
        (torch, "load", weights_only_load),
        (torch.serialization, "load", weights_only_load),
        (_package, "pickle", _RefusingPickle(refuse)),
        (torch._C, "_pickle_load_obj", refuse),
    )
    with _LOCK, ExitStack() as stack:
        for owner, attribute, value in replacements:
            stack.enter_context(_replaced(owner, attribute, value))
        yield


class _RefusingPickle:
    """Stands for the `pickle` module in torch's loader: every load refuses."""

    def __init__(self, refuse: Any) -> None:
        self.loads = self.load = refuse


@contextmanager
def _replaced(owner: Any, attribute: str, value: Any) -> Iterator[None]:
    original = getattr(owner, attribute)
    setattr(owner, attribute, value)
    try:
        yield
    finally:
        setattr(owner, attribute, original)
