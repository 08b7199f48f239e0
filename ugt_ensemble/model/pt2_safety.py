"""What a `.pt2` must satisfy before torch reads it: bounded sizes, allow-listed operators, plain sizes.

Checked on the zip's central directory and the graph's JSON, before torch's loader sees the file (which
entries it may hold, and loading it with unpickling refused: `pt2_reading`):
- sizes: the entries' declared uncompressed sizes add up to at most `max_archive_bytes()` (2 GiB unless
  UGT_MAX_ARCHIVE_BYTES says otherwise), no entry above 1 MiB inflates more than 100 times, and no name
  appears twice; so a small archive that inflates to gigabytes is refused before a byte is inflated;
- operators: every call in every graph (subgraphs of control flow included) is on the allow-list of
  `pt2_operators`; a file, process, storage or IO operator is refused by name;
- code: every symbolic size and every guard is the plain expression torch writes (`pt2_expressions`),
  since torch evaluates both as Python.
`check_program_operators` walks the loaded program's graphs again, as torch deserialised them.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.model.pt2_expressions import check_guard, check_size_expression
from ugt_ensemble.model.pt2_operators import archive_target_name, refused_operators, runtime_target_name

MAX_ARCHIVE_ENV = "UGT_MAX_ARCHIVE_BYTES"
DEFAULT_MAX_ARCHIVE_BYTES = 2 << 30
#: An entry above this size may inflate at most MAX_RATIO times (torch stores entries uncompressed).
RATIO_CHECKED_BYTES = 1 << 20
MAX_RATIO = 100
#: The graph JSON is parsed whole: one above this size is refused.
MAX_PROGRAM_JSON_BYTES = 256 << 20
_SHOWN = 3


def max_archive_bytes() -> int:
    """The largest total uncompressed size of a .pt2: UGT_MAX_ARCHIVE_BYTES, else 2 GiB."""
    text = os.environ.get(MAX_ARCHIVE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_ARCHIVE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{MAX_ARCHIVE_ENV}={text!r}: give the largest .pt2 size in bytes, e.g. {4 << 30}")
    return value


def check_archive_sizes(path: Path, archive: zipfile.ZipFile, limit: int | None = None) -> None:
    """InputFileError unless the declared sizes in `archive`'s central directory are within bounds."""
    limit = max_archive_bytes() if limit is None else limit
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputFileError(f"model {path}: the archive names {', '.join(twice[:_SHOWN])} twice; refused")
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise InputFileError(
            f"model {path}: its entries inflate to {_size(total)}, above the limit of {_size(limit)}; "
            f"to load a model this large set {MAX_ARCHIVE_ENV} (bytes)"
        )
    for info in infos:
        if info.file_size > RATIO_CHECKED_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise InputFileError(
                f"model {path}: {info.filename} inflates from {_size(info.compress_size)} to "
                f"{_size(info.file_size)}, over {MAX_RATIO} times (torch stores entries uncompressed); refused"
            )


def check_program_json(path: Path, archive: zipfile.ZipFile, name: str) -> None:
    """InputFileError unless the graph JSON `name` calls only allowed operators and holds plain sizes."""
    if archive.getinfo(name).file_size > MAX_PROGRAM_JSON_BYTES:
        raise InputFileError(f"model {path}: its graph {name} is above {_size(MAX_PROGRAM_JSON_BYTES)}; refused")
    try:
        program = json.loads(archive.read(name))
    except (ValueError, RecursionError):
        raise InputFileError(f"model {path}: its graph {name} is not JSON") from None
    targets, expressions = [], []
    for key, value in _items(program):
        if key == "target" and isinstance(value, str):
            targets.append(archive_target_name(value))
        elif key == "expr_str":
            expressions.append(value)
    _refuse_operators(path, targets)
    for text in expressions:
        _check_text(path, "symbolic size", text, check_size_expression)
    guards = program.get("guards_code", []) if isinstance(program, dict) else []
    for text in guards if isinstance(guards, list) else [guards]:
        _check_text(path, "guard", text, check_guard)


def check_program_operators(program: Any, path: Path) -> None:
    """InputFileError unless every call in every graph of the loaded ExportedProgram `program` is allowed."""
    modules = [module for _, module in program.graph_module.named_modules() if hasattr(module, "graph")]
    targets = [
        runtime_target_name(node.target)
        for module in modules
        for node in module.graph.nodes
        if node.op in ("call_function", "call_method")
    ]
    _refuse_operators(path, targets)


def _refuse_operators(path: Path, targets: list[str]) -> None:
    refused = refused_operators(targets)
    if refused:
        raise InputFileError(f"model {path}: operators not allowed in a served model: {', '.join(refused)}")


def _check_text(path: Path, kind: str, text: object, check) -> None:  # noqa: ANN001 - one of the two checks
    try:
        check(text)
    except ValueError as exc:
        shown = str(text)[:80].replace("\n", "\\n")
        raise InputFileError(f"model {path}: a {kind} that is not plain arithmetic of sizes ({exc}: {shown!r}); "
                             "refused, torch would run it as Python") from None  # fmt: skip


def _items(value: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair of every object nested in `value` (iterative: no recursion limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield key, child
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
