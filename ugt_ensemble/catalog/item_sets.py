"""Named item sets (allow-lists) from catalog columns and from files of item ids, as masks over a catalog.

- A catalog column (`--set-column COL`, CSV or Parquet): a boolean column (values 0/1/true/false, any case;
  an empty field is false) makes one set named COL of its true items. Any other column is categorical: one
  set per distinct value, named "COL=value" (values trimmed; an empty field is in no set of the column; at
  most `MAX_COLUMN_VALUES` values).
- A file (`--item-set NAME=FILE`): one integer item id per line, or a CSV with an item_id column; blank lines
  and a header line are allowed. Ids the catalog lacks are counted and logged (a catalog update may drop
  items); a malformed line is an error naming the file and the line, quoting the value only when it is a
  short plain token in a file that does list item ids (`catalog.quoting`: the path may name any file).

Every set is a bool mask over `CatalogIndex.item_ids` (the index's ascending item id order). Set names follow
`ugt_ensemble.runtime.rule_request.SET_NAME_RULE` (any script, spaces, "&", apostrophes; no control characters;
at most 200 characters), are checked when the catalog is read, stored in Unicode NFC (values that differ only
in their Unicode composition make one set) and are unique.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from ugt_ensemble.catalog.files import CatalogColumn, read_catalog_columns
from ugt_ensemble.catalog.quoting import plain_header, plain_value, read_failure
from ugt_ensemble.errors import ConfigError, InputFileError, MissingFileError
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.errors import clip
from ugt_ensemble.runtime.rule_request import require_set_name

LOGGER = logging.getLogger(__name__)
#: Most distinct values of a categorical set column (each value makes a set: a mask over the catalog).
MAX_COLUMN_VALUES = 256
TRUE_VALUES, FALSE_VALUES = frozenset({"1", "true"}), frozenset({"0", "false"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_INTEGERS = re.compile(r"(?:[+-]?[0-9]{1,19}\n)*[+-]?[0-9]{1,19}")
#: A one-column header line: a name, never something that looks like a (malformed) item id.
_HEADER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]*")


class ItemSetSettings(Protocol):
    """What `item_sets_for` reads (an `ExportConfig` has both fields)."""

    set_columns: tuple[str, ...]
    item_sets: tuple[tuple[str, Path], ...]


def item_sets_for(
    settings: ItemSetSettings, catalog_path: Path | None, index: CatalogIndex,
    read: tuple[np.ndarray, list[CatalogColumn]] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Every item set the settings define: name -> bool mask over `index.item_ids` (columns first, then files).
    `read`: the set columns as `read_catalog_columns` returns them, read already (`catalog.one_read`)."""
    sets: dict[str, np.ndarray] = {}
    if settings.set_columns:
        if catalog_path is None:
            raise ConfigError("--set-column (`set_columns`) needs a catalog file: pass --catalog FILE")
        sets.update(column_sets(catalog_path, tuple(settings.set_columns), index, read))
    for given, path in settings.item_sets:
        name = require_set_name(given, f"--item-set {clip(str(given), 80)}=...")
        if name in sets:
            raise ConfigError(f"item set {name!r} is defined twice: by a --set-column and by --item-set {name}=...")
        sets[name] = file_set(name, Path(path), index)
    return sets


def column_sets(
    catalog_path: str | Path, columns: tuple[str, ...], index: CatalogIndex,
    read_already: tuple[np.ndarray, list[CatalogColumn]] | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The sets of the named catalog columns (see the module docstring); `read_already`: those columns, read."""
    item_ids, read = read_already if read_already is not None else read_catalog_columns(catalog_path, columns)
    positions, found = index.positions_of(item_ids)
    if not found.all():
        LOGGER.warning("catalog %s: %d row(s) name items outside the served catalog; they are in no item set",
                       catalog_path, int((~found).sum()))  # fmt: skip
    sets: dict[str, np.ndarray] = {}
    for column in read:
        for name, mask in _column_sets(column, positions[found], column.codes[found], len(index), catalog_path):
            if name in sets:
                raise InputFileError(f"catalog {catalog_path}: item set {name!r} comes from two set columns")
            sets[name] = mask
    return sets


def _column_sets(
    column: CatalogColumn, positions: np.ndarray, codes: np.ndarray, size: int, source: str | Path
) -> list[tuple[str, np.ndarray]]:
    """(name, mask) of each set of one column; `positions[i]` is the index row of the item whose value is
    `codes[i]` (-1: none)."""
    where = f"catalog {source}, column {column.name!r}"
    lowered = {value.lower() for value in column.values}
    if lowered and lowered <= TRUE_VALUES | FALSE_VALUES:
        true = np.array([value.lower() in TRUE_VALUES for value in column.values] + [False])  # [-1]: empty
        mask = np.zeros(size, dtype=bool)
        mask[positions[true[codes]]] = True
        return [(_data_name(column.name, where), _logged(column.name, mask))]
    if len(column.values) > MAX_COLUMN_VALUES:
        raise InputFileError(
            f"{where} has {len(column.values)} distinct values; a categorical set column may have at most "
            f"{MAX_COLUMN_VALUES} (one item set per value): choose a coarser column, or use --item-set files"
        )
    if not column.values:
        LOGGER.warning("%s is empty on every row: it defines no item set", where)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(column.values) + 1))
    result: dict[str, np.ndarray] = {}
    for value_index, value in enumerate(column.values):
        name = _data_name(f"{column.name}={value}", f"{where}, value {clip(repr(value), 60)}")
        mask = result.setdefault(name, np.zeros(size, dtype=bool))  # one set per NFC name
        mask[positions[order[bounds[value_index] : bounds[value_index + 1]]]] = True
    return list(result.items())


def _data_name(name: str, where: str) -> str:
    try:
        return require_set_name(name, where)
    except ConfigError as exc:
        raise InputFileError(f"{exc} (change the catalog's values, or define the set with --item-set)") from None


def file_set(name: str, path: Path, index: CatalogIndex) -> np.ndarray:
    """The set of the item ids listed in `path`, as a bool mask over `index.item_ids`."""
    ids = read_item_ids(path)
    positions, found = index.positions_of(ids)
    missing = int((~found).sum())
    if missing:
        LOGGER.warning("item set %s (%s): %d of its %d item ids are not in the catalog; ignored",
                       name, path, missing, len(ids))  # fmt: skip
    mask = np.zeros(len(index), dtype=bool)
    mask[positions[found]] = True
    return _logged(name, mask)


def read_item_ids(path: Path) -> np.ndarray:
    """The item ids of a set file (int64, in file order); `InputFileError` naming the file and line."""
    if not path.is_file():
        raise MissingFileError(f"item set file {path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            fields, lines, named = _id_fields(path, csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"item set file {path}: cannot read ({read_failure(exc)})") from None
    if fields and _INTEGERS.fullmatch("\n".join(fields)):
        try:
            return np.array([int(v) for v in fields], dtype=np.int64)
        except OverflowError:
            pass
    bad = [(line, value) for value, line in zip(fields, lines) if not _is_int64(value)]
    if not bad:
        return np.zeros(0, dtype=np.int64)  # no ids at all
    line, value = bad[0]
    if len(bad) == len(fields) and not named:
        raise InputFileError(
            f"item set file {path} line {line}: not an int64 item id, and no line of the file is one: an item set "
            "file lists one integer item id per line, or is a CSV with an item_id column"
        )
    more = f" (and {len(bad) - 1} more bad line(s))" if len(bad) > 1 else ""
    shown = plain_value(value) or f"a value of {len(value)} character(s)"
    raise InputFileError(f"item set file {path} line {line}: {shown} is not an int64 item id{more}")


def _id_fields(path: Path, reader) -> tuple[list[str], list[int], bool]:  # noqa: ANN001 - a csv reader
    """The stripped item id field of each data row, its line number, and whether a header (skipped) names the
    item_id column."""
    fields: list[str] = []
    lines: list[int] = []
    column = width = None
    named = False
    for row in reader:
        if not any(field.strip() for field in row):
            continue  # a blank line
        if width is None:
            column, width, header = _layout(path, reader.line_num, [field.strip() for field in row])
            if header:
                named = row[column].strip() == "item_id"
                continue
        if len(row) != width:
            raise InputFileError(
                f"item set file {path} line {reader.line_num}: expected {width} field(s), got {len(row)}"
            )
        fields.append(row[column].strip())
        lines.append(reader.line_num)
    return fields, lines, named


def _layout(path: Path, line: int, cells: list[str]) -> tuple[int, int, bool]:
    """(item id column, fields per row, whether this first line is a header) from the first non-blank line."""
    if "item_id" in cells:
        return cells.index("item_id"), len(cells), True
    if len(cells) == 1:
        return 0, 1, bool(_HEADER_NAME.fullmatch(cells[0]))
    if plain_header(cells) is None:
        raise InputFileError(
            f"item set file {path} line {line}: {len(cells)} fields that are not column names; an item set file "
            "lists one integer item id per line, or is a CSV with an item_id column"
        )
    shown = clip(",".join(cells))
    raise InputFileError(
        f"item set file {path} line {line}: header {shown!r} has no item_id column (or list one id per line)"
    )


def _is_int64(value: str) -> bool:
    return bool(_INTEGER.fullmatch(value)) and -(2**63) <= int(value) < 2**63


def _logged(name: str, mask: np.ndarray) -> np.ndarray:
    count = int(mask.sum())
    if count:
        LOGGER.info("item set %s: %d of %d catalog items", name, count, len(mask))
    else:
        LOGGER.warning("item set %s has no catalog item: requests naming it get no recommendations", name)
    return mask
