"""Read and write catalog files: CSV or Parquet with columns item_id, l1, l2, l3.

CSV: a header line naming the columns (any order; extra columns are ignored by `load_catalog`), then one
integer row per item; blank lines are skipped and a UTF-8 byte-order mark is accepted. Errors name the
file and the line as an editor numbers it. Parquet needs pyarrow; errors name the row.
`read_catalog_columns` reads extra columns (e.g. `in_stock`, `category`) as text, factorised.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ugt_ensemble.catalog.catalog import COLUMNS, MAX_REPORTED, Catalog, data_row_label
from ugt_ensemble.catalog.quoting import plain_header, read_failure
from ugt_ensemble.errors import InputFileError, MissingDependencyError
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES
from ugt_ensemble.runtime.errors import clip

LOGGER = logging.getLogger(__name__)
PARQUET_SUFFIXES = (".parquet", ".pq")
#: One integer field (after stripping), and a whole column of them joined by newlines.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INTEGERS = re.compile(r"(?:[+-]?[0-9]{1,19}\n)*[+-]?[0-9]{1,19}")


def load_catalog(path: str | Path, codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES) -> Catalog:
    """Load and validate a catalog file (format from the suffix: .csv, .parquet or .pq)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"catalog {path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table, label = _read_parquet(path), data_row_label
    else:
        table, label = _read_csv_fast(path) or _read_csv(path)
    LOGGER.info("read %d catalog rows from %s", len(table), path)
    return Catalog.from_arrays(table[:, 0], table[:, 1:], codebook_sizes, f"catalog {path}", label)


def save_catalog_csv(catalog: Catalog, path: str | Path) -> None:
    """Write `catalog` as CSV with a header line."""
    table = np.column_stack([catalog.item_ids, catalog.codes])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=",".join(COLUMNS), comments="")


def _read_csv(path: Path) -> tuple[np.ndarray, Callable[[int], str]]:
    """The (item_id, l1, l2, l3) table and a label giving each data row's true line number.

    Fields must be integers (optional sign, digits, surrounding spaces); floats, exponents, NaN and
    values outside int64 are refused by name. Blank lines are skipped; a UTF-8 BOM is accepted.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            usecols, width = _csv_columns(path, next(reader, None))
            fields, lines, problems = _csv_fields(reader, usecols, width)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"catalog {path}: cannot read ({read_failure(exc)})") from None
    if not problems and not lines:
        raise InputFileError(f"catalog {path}: the catalog has no items (only a header)")
    table = None if problems else _as_int64(fields)
    if table is None:
        problems = problems or _bad_values(fields, lines)
        listed = "\n  ".join(problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise InputFileError(f"catalog {path}: invalid rows:\n  {listed}{more}")
    return table, lambda i: f"line {lines[i]}"


def _read_csv_fast(path: Path) -> tuple[np.ndarray, Callable[[int], str]] | None:
    """pyarrow's multithreaded CSV reader (when installed) for a well-formed file: the four columns as int64, or
    None for anything it does not take as it is (then `_read_csv` reads the file and words every problem).
    Line numbers for messages are found only when a message needs one."""
    try:
        from pyarrow import csv as pa_csv
    except ImportError:
        return None
    try:
        convert = pa_csv.ConvertOptions(
            include_columns=list(COLUMNS), column_types=dict.fromkeys(COLUMNS, "int64"), strings_can_be_null=False
        )
        table = pa_csv.read_csv(path, convert_options=convert)
        if table.num_rows == 0 or any(table.column(c).null_count for c in COLUMNS):
            return None
        values = np.column_stack([table.column(c).to_numpy() for c in COLUMNS]).astype(np.int64, copy=False)
    except Exception:  # noqa: BLE001 - pyarrow raises many types; the strict reader explains the problem
        return None
    lines: list[int] = []

    def label(i: int) -> str:
        if not lines:
            lines.extend(_data_lines(path))
        return f"line {lines[i]}" if i < len(lines) else data_row_label(i)

    return values, label


def _data_lines(path: Path) -> list[int]:
    """The line number of each data row (blank lines skipped), as `_read_csv` counts them."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return [reader.line_num for row in reader if any(field.strip() for field in row)]


def _csv_columns(path: Path, header: list[str] | None) -> tuple[tuple[int, ...], int]:
    if not header or not any(name.strip() for name in header):
        raise InputFileError(f"catalog {path}: empty file; expected a header line {','.join(COLUMNS)}")
    names = [name.strip() for name in header]
    missing = [c for c in COLUMNS if c not in names]
    shown = plain_header(names)
    if missing and shown is None:  # perhaps no catalog at all: its first line is not echoed
        raise InputFileError(
            f"catalog {path}: line 1 is not a CSV header of column names; expected {','.join(COLUMNS)}"
        )
    if missing:
        raise InputFileError(f"catalog {path}: header {shown} lacks column(s) {missing}; need {list(COLUMNS)}")
    return tuple(names.index(c) for c in COLUMNS), len(names)


def _csv_fields(reader, usecols: tuple[int, ...], width: int) -> tuple[list[list[str]], list[int], list[str]]:  # noqa: ANN001
    """The stripped text of the four columns, each data row's line number, and rows of the wrong width."""
    fields: list[list[str]] = [[] for _ in COLUMNS]
    lines, problems = [], []
    for row in reader:
        if not any(field.strip() for field in row):
            continue  # a blank line
        if len(row) != width:
            problems.append(f"line {reader.line_num}: expected {width} fields, got {len(row)}")
            continue
        lines.append(reader.line_num)
        for column, position in zip(fields, usecols):
            column.append(row[position].strip())
    return fields, lines, problems


def _as_int64(fields: list[list[str]]) -> np.ndarray | None:
    """The columns as an int64 (rows, 4) table when every field is an in-range integer, else None."""
    columns = []
    for column in fields:
        if column and not _INTEGERS.fullmatch("\n".join(column)):
            return None
        try:
            columns.append(np.array([int(v) for v in column], dtype=np.int64))
        except OverflowError:
            return None
    return np.column_stack(columns)


def _bad_values(fields: list[list[str]], lines: list[int]) -> list[str]:
    """Slow path, only after the fast one failed: one problem per bad field, with its line."""
    problems = []
    for row, line in enumerate(lines):
        for name, column in zip(COLUMNS, fields):
            value = column[row]
            if not _INTEGER.fullmatch(value):
                problems.append(f"line {line}: {name} is {clip(repr(value))}, not an integer")
            elif len(value.lstrip("+-")) > 19 or not -(2**63) <= int(value) < 2**63:
                problems.append(f"line {line}: {name} is {clip(value)}, outside the int64 range")
        if len(problems) > MAX_REPORTED:
            break
    return problems or ["could not be parsed as integers"]


def _read_parquet(path: Path) -> np.ndarray:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            f"catalog {path}: reading Parquet needs pyarrow (pip install pyarrow), or use a CSV catalog"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputFileError(f"catalog {path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputFileError(f"catalog {path}: columns {table.column_names} lack {missing}; need {list(COLUMNS)}")
    return np.column_stack([_parquet_column(path, table, name) for name in COLUMNS])


def _parquet_column(path: Path, table, name: str) -> np.ndarray:  # noqa: ANN001 - pyarrow.Table
    column = table.column(name)
    if column.null_count:
        nulls = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[:MAX_REPORTED]
        rows = ", ".join(data_row_label(i) for i in nulls)
        raise InputFileError(f"catalog {path}: column {name} has {column.null_count} null(s): {rows}")
    values = column.to_numpy()
    if not np.issubdtype(values.dtype, np.integer):
        raise InputFileError(f"catalog {path}: column {name} has type {column.type}, expected integers")
    if values.dtype == np.uint64 and values.size and values.max() > np.iinfo(np.int64).max:
        raise InputFileError(f"catalog {path}: column {name} has values above the int64 range")
    return values.astype(np.int64)


@dataclass(frozen=True)
class CatalogColumn:
    """One extra catalog column, factorised: its distinct values (text, trimmed, non-empty) and each row's
    value as an index into them (int64; -1 where the field is empty or null)."""

    name: str
    values: tuple[str, ...]
    codes: np.ndarray


def read_catalog_columns(path: str | Path, names: tuple[str, ...]) -> tuple[np.ndarray, list[CatalogColumn]]:
    """The item ids (int64, in file order) and the named columns of a CSV or Parquet catalog.

    Values are read as text (Parquet booleans as "true"/"false", numbers as written by pyarrow) and trimmed.
    Uses pyarrow where installed (vectorised); CSV without it falls back to the csv module.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"catalog {path}: no such file")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        if parquet:
            _read_parquet(path)  # raises MissingDependencyError
        return _csv_columns_plain(path, names)
    return _arrow_columns(path, names, parquet)


def _arrow_columns(path: Path, names: tuple[str, ...], parquet: bool) -> tuple[np.ndarray, list[CatalogColumn]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _arrow_table(path, names, parquet)
    if not pa.types.is_integer(table.column(0).type):  # CSV text: drop blank rows (",,,"), then convert
        id_text = pc.utf8_trim_whitespace(table.column(0))
        table = table.filter(pc.not_equal(id_text, ""))
        try:
            table = table.set_column(0, "item_id", pc.cast(pc.utf8_trim_whitespace(table.column(0)), pa.int64()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputFileError(f"catalog {path}: column item_id is not all integers ({exc})") from None
    return table.column(0).to_numpy().astype(np.int64), arrow_text_columns(path, table, names, 1)


def arrow_text_columns(path: Path, table, names: tuple[str, ...], first: int) -> list[CatalogColumn]:  # noqa: ANN001
    """`names`, the pyarrow `table`'s columns from position `first` on, as text (trimmed), factorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for position, name in enumerate(names, start=first):
        try:
            text = pc.utf8_trim_whitespace(pc.cast(table.column(position), pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            kind = table.column(position).type
            raise InputFileError(f"catalog {path}: column {name} has type {kind}; a set column holds text, "
                                 "numbers or booleans") from None  # fmt: skip
        encoded = pc.dictionary_encode(text).combine_chunks()
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        columns.append(_factorised(name, encoded.dictionary.to_pylist(), indices))
    return columns


def _arrow_table(path: Path, names: tuple[str, ...], parquet: bool):  # noqa: ANN202 - a pyarrow.Table
    """item_id, then `names`, as a pyarrow table (CSV fields as text)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if parquet:
        try:
            schema = pq.read_schema(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InputFileError(f"catalog {path}: not a readable Parquet file ({exc})") from None
        _require_columns(path, schema.names, names)
        return pq.read_table(path, columns=["item_id", *names])
    header = _csv_header(path)
    _require_columns(path, header, names)
    fields = [f"f{i}" for i in range(len(header))]
    wanted = [fields[header.index(name)] for name in ("item_id", *names)]
    try:
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=fields, skip_rows=1),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=_skip_blank_row),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted, column_types={f: pa.string() for f in wanted}, strings_can_be_null=False
            ),
        ).select(wanted)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"catalog {path}: cannot read ({exc})") from None


def _skip_blank_row(row) -> str:  # noqa: ANN001 - a pyarrow InvalidRow
    """pyarrow's handler of rows of the wrong width: skip a blank line ("  "), refuse anything else."""
    return "skip" if not (row.text or "").strip(" \t,\r\n") else "error"


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"catalog {path}: cannot read ({read_failure(exc)})") from None
    if not header:
        raise InputFileError(f"catalog {path}: empty file; expected a header line")
    return [name.strip() for name in header]


def _require_columns(path: Path, present: list[str], names: tuple[str, ...]) -> None:
    missing = [name for name in ("item_id", *names) if name not in present]
    if missing:
        shown = plain_header(list(present))
        raise InputFileError(f"catalog {path}: no column(s) {missing}" + (f" (its columns: {shown})" if shown else ""))


def _csv_columns_plain(path: Path, names: tuple[str, ...]) -> tuple[np.ndarray, list[CatalogColumn]]:
    """The csv module's reading of the same columns (pyarrow missing)."""
    header = _csv_header(path)
    _require_columns(path, header, names)
    positions = [header.index(name) for name in ("item_id", *names)]
    fields: list[list[str]] = [[] for _ in positions]
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if any(field.strip() for field in row):
                    for column, position in zip(fields, positions):
                        column.append(row[position].strip() if position < len(row) else "")
            ids = np.array([int(v) for v in fields[0]], dtype=np.int64)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, OverflowError) as exc:
        raise InputFileError(f"catalog {path}: cannot read ({exc})") from None
    columns = []
    for name, texts in zip(names, fields[1:]):
        lookup: dict[str, int] = {}
        codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in texts), dtype=np.int64, count=len(texts))
        columns.append(_factorised(name, list(lookup), codes))
    return ids, columns


def _factorised(name: str, values: list, codes: np.ndarray) -> CatalogColumn:
    """A `CatalogColumn` from distinct values and row codes, the empty value (if any) turned into -1."""
    if "" not in values:
        return CatalogColumn(name, tuple(values), codes)
    empty = values.index("")
    remap = np.arange(len(values) + 1, dtype=np.int64) - (np.arange(len(values) + 1) > empty)
    remap[empty] = remap[-1] = -1  # the last entry maps -1 (null) to -1
    return CatalogColumn(name, tuple(v for v in values if v != ""), remap[codes])
