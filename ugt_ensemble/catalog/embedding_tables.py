"""Embeddings from a Parquet or CSV table (pyarrow): the item_id column and one list column or columns e0..eN.

Only the item_id and vector columns are read. CSV errors name lines as an editor numbers them (found only when a
message needs them); a value is quoted only when it is a short plain token (`catalog.quoting`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable

import numpy as np

from ugt_ensemble.catalog.catalog import MAX_REPORTED, data_row_label
from ugt_ensemble.catalog.quoting import plain_header, plain_value, read_failure
from ugt_ensemble.errors import InputFileError, MissingDependencyError

ID_COLUMN = "item_id"
DEFAULT_PREFIX = "e"
Label = Callable[[int], str]


def read_table_embeddings(
    path: Path, parquet: bool, vector_column: str | None, vector_prefix: str | None
) -> tuple[np.ndarray, np.ndarray, Label]:
    """(item ids, vectors (N, d), row label) of a Parquet or CSV embeddings file."""
    source = f"embeddings {path}"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"{source}: reading Parquet/CSV embeddings needs pyarrow (pip install pyarrow); "
                                     "or give a .npy/.npz file") from None  # fmt: skip
    names, types = _schema(path, parquet, source)
    vector_names, is_list = _vector_names(source, names, types, vector_column, vector_prefix)
    table = _read(path, parquet, source, [ID_COLUMN, *vector_names])
    label = data_row_label if parquet else _lazy_csv_labels(path)
    if table.num_rows == 0:
        raise InputFileError(f"{source}: no items (empty file)")
    ids = _integer_column(table.column(ID_COLUMN), ID_COLUMN, source, label)
    if is_list:
        vectors = _list_column(table.column(vector_names[0]), vector_names[0], source, label)
    else:
        vectors = np.column_stack([_number_column(table.column(n), n, source, label) for n in vector_names])
    return ids, vectors, label


def _schema(path: Path, parquet: bool, source: str) -> tuple[list[str], dict[str, object]]:
    """Column names, and the Parquet column types (CSV: none known before reading)."""
    if parquet:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InputFileError(f"{source}: not a readable Parquet file ({type(exc).__name__})") from None
        return list(schema.names), {field.name: field.type for field in schema}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{source}: cannot read ({read_failure(exc)})") from None
    if not header or not any(h.strip() for h in header):
        raise InputFileError(f"{source}: empty file; expected a header line with item_id and the vector columns")
    return [h.strip() for h in header], {}


def _vector_names(
    source: str, names: list[str], types: dict, vector_column: str | None, vector_prefix: str | None
) -> tuple[list[str], bool]:
    """The vector column (one list column: True) or the numbered columns prefix0..prefixN in order (False)."""
    shown = plain_header(names)
    columns = f" (its columns: {shown})" if shown else ""
    if ID_COLUMN not in names:
        raise InputFileError(f"{source}: no column {ID_COLUMN!r}{columns}")
    if vector_column is not None:
        if vector_column not in names:
            raise InputFileError(f"{source}: no vector column {vector_column!r}{columns}")
        return [vector_column], True
    if vector_prefix is None:
        lists = [n for n, t in types.items() if _is_list(t)]
        if len(lists) == 1 and not _numbered(names, DEFAULT_PREFIX):
            return lists, True
        vector_prefix = DEFAULT_PREFIX
    numbered = _numbered(names, vector_prefix)
    if not numbered:
        raise InputFileError(f"{source}: no vector columns: expected one list column (--vector-column NAME) or "
                             f"columns {vector_prefix}0..{vector_prefix}N (--vector-prefix){columns}")  # fmt: skip
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        raise InputFileError(f"{source}: vector columns {vector_prefix}0..{vector_prefix}{max(numbered)} lack "
                             f"{', '.join(f'{vector_prefix}{i}' for i in missing[:MAX_REPORTED])}")  # fmt: skip
    return [f"{vector_prefix}{i}" for i in sorted(numbered)], False


def _numbered(names: list[str], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(0|[1-9][0-9]*)")
    return [int(m.group(1)) for m in map(pattern.fullmatch, names) if m]


def _is_list(kind: object) -> bool:
    import pyarrow as pa

    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _read(path: Path, parquet: bool, source: str, columns: list[str]):  # noqa: ANN202 - a pyarrow.Table
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if parquet:
        try:
            return pq.read_table(path, columns=columns)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(f"{source}: not a readable Parquet file ({type(exc).__name__})") from None
    try:
        convert = pa_csv.ConvertOptions(include_columns=columns, null_values=[""])  # "nan" is a NaN, not empty
        return pa_csv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"{source}: {_csv_failure(path, str(exc))}") from None


def _csv_failure(path: Path, message: str) -> str:
    """Where a CSV file breaks: the first row whose field count differs from the header's, else pyarrow's reason
    without the row text it quotes."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        width = len(next(reader))
        for row in reader:
            if any(f.strip() for f in row) and len(row) != width:
                return f"line {reader.line_num}: expected {width} fields, got {len(row)}"
    return f"cannot read as CSV ({message.split(':')[0]})"


def _lazy_csv_labels(path: Path) -> Label:
    lines: list[int] = []

    def label(i: int) -> str:
        if not lines:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                next(reader, None)
                lines.extend(reader.line_num for row in reader if any(f.strip() for f in row))
        return f"line {lines[i]}" if i < len(lines) else data_row_label(i)

    return label


def _nulls(column, name: str, source: str, label: Label) -> None:  # noqa: ANN001 - a pyarrow ChunkedArray
    if column.null_count:
        rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[:MAX_REPORTED]
        raise InputFileError(f"{source}: {column.null_count} empty {name} value(s): "
                             f"{', '.join(label(int(r)) for r in rows)}")  # fmt: skip


def _first_bad(column, name: str, source: str, label: Label, parse: type, what: str) -> InputFileError:  # noqa: ANN001
    """The error for a text column that should hold numbers: its first value `parse` refuses."""
    for i, value in enumerate(column.to_pylist()):
        try:
            parse(value.strip())
        except (ValueError, AttributeError):
            shown = plain_value(str(value).strip()) or "a value"
            return InputFileError(f"{source}: {label(i)}: {name} is {shown}, not {what}")
    return InputFileError(f"{source}: column {name} has type {column.type}, expected {what}")


def _integer_column(column, name: str, source: str, label: Label) -> np.ndarray:  # noqa: ANN001
    import pyarrow as pa

    _nulls(column, name, source, label)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raise _first_bad(column, name, source, label, int, "an integer")
    if not pa.types.is_integer(column.type):
        raise InputFileError(f"{source}: column {name} has type {column.type}, expected integers")
    return column.to_numpy()


def _number_column(column, name: str, source: str, label: Label) -> np.ndarray:  # noqa: ANN001
    import pyarrow as pa

    _nulls(column, name, source, label)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        raise _first_bad(column, name, source, label, float, "a number")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InputFileError(f"{source}: column {name} has type {column.type}, expected numbers")
    return column.to_numpy()


def _list_column(column, name: str, source: str, label: Label) -> np.ndarray:  # noqa: ANN001
    """(N, d) from a list column (Parquet) or a text column of numbers (CSV)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _nulls(column, name, source, label)
    column = column.combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = _split_text(column, name, source, label)
    elif not _is_list(column.type):
        raise InputFileError(f"{source}: column {name} has type {column.type}; expected a list of numbers")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    ragged = np.flatnonzero(lengths != lengths[0])
    if ragged.size:
        rows = ", ".join(f"{label(int(r))} has {lengths[r]}" for r in ragged[:MAX_REPORTED])
        raise InputFileError(f"{source}: ragged vectors in {name}: {label(0)} has {lengths[0]} components; {rows}")
    values = column.flatten()
    if values.null_count:
        first = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
        raise InputFileError(f"{source}: {label(first // max(int(lengths[0]), 1))}: {name} has an empty component "
                             f"({first % max(int(lengths[0]), 1)})")  # fmt: skip
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise InputFileError(f"{source}: column {name} holds {values.type}, expected numbers")
    return values.to_numpy(zero_copy_only=False).reshape(len(column), int(lengths[0]))


def _split_text(column, name: str, source: str, label: Label):  # noqa: ANN001, ANN202 - pyarrow arrays
    """A CSV text column such as "[0.1, 0.2]" or "0.1 0.2" as a list<double> column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim(pc.replace_substring_regex(column, r"[\[\],;\s]+", " "), " ")
    parts = pc.split_pattern(text, " ")
    try:
        numbers = pc.cast(parts.flatten(), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _first_bad(pa.chunked_array([column]), name, source, label, _float_list, "a list of numbers") from None
    return pa.ListArray.from_arrays(parts.offsets, numbers)


def _float_list(text: str) -> list[float]:
    values = [float(v) for v in re.split(r"[\[\],;\s]+", text.strip("[] \t")) if v]
    if not values:
        raise ValueError("no numbers")
    return values
