"""Read and write catalog files: CSV or Parquet with columns item_id, l1, l2, l3.

CSV: a header line naming the columns (any order; extra columns are ignored), then one integer
row per item. Errors name the file and the line. Parquet needs pyarrow; errors name the row.
"""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path

import numpy as np

from ugt_ensemble.catalog.catalog import COLUMNS, MAX_REPORTED, Catalog, data_row_label
from ugt_ensemble.errors import InputFileError, MissingDependencyError
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES

LOGGER = logging.getLogger(__name__)
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_catalog(path: str | Path, codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES) -> Catalog:
    """Load and validate a catalog file (format from the suffix: .csv, .parquet or .pq)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"catalog {path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table = _read_parquet(path)
        label = data_row_label
    else:
        table = _read_csv(path)
        label = _csv_line_label
    LOGGER.info("read %d catalog rows from %s", len(table), path)
    return Catalog.from_arrays(table[:, 0], table[:, 1:], codebook_sizes, f"catalog {path}", label)


def save_catalog_csv(catalog: Catalog, path: str | Path) -> None:
    """Write `catalog` as CSV with a header line."""
    table = np.column_stack([catalog.item_ids, catalog.codes])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=",".join(COLUMNS), comments="")


def _csv_line_label(i: int) -> str:
    return f"line {i + 2}"


def _read_csv(path: Path) -> np.ndarray:
    header = _csv_header(path)
    usecols = _column_positions(path, header)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=usecols, dtype=np.int64, ndmin=2, quotechar='"')
    except (ValueError, OverflowError):
        raise InputFileError(_first_bad_csv_lines(path, usecols, len(header))) from None
    if table.shape[0] == 0:
        raise InputFileError(f"catalog {path}: the catalog has no items (only a header)")
    return table


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"catalog {path}: cannot read ({exc})") from None
    if not header:
        raise InputFileError(f"catalog {path}: empty file; expected a header line {','.join(COLUMNS)}")
    return [name.strip() for name in header]


def _column_positions(path: Path, names: list[str]) -> tuple[int, ...]:
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InputFileError(f"catalog {path}: header {names} lacks column(s) {missing}; need {list(COLUMNS)}")
    return tuple(names.index(c) for c in COLUMNS)


def _first_bad_csv_lines(path: Path, usecols: tuple[int, ...], width: int) -> str:
    """Slow path, only after the fast parser failed: find and describe the bad lines."""
    problems = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for line_no, row in enumerate(reader, start=2):
            problem = _csv_row_problem(row, usecols, width)
            if problem:
                problems.append(f"line {line_no}: {problem}")
                if len(problems) == MAX_REPORTED:
                    break
    if not problems:
        problems.append("could not be parsed as integers")
    return f"catalog {path}: invalid rows:\n  " + "\n  ".join(problems)


def _csv_row_problem(row: list[str], usecols: tuple[int, ...], width: int) -> str | None:
    if len(row) != width:
        return f"expected {width} fields, got {len(row)}"
    for name, col in zip(COLUMNS, usecols):
        value = row[col].strip()
        try:
            number = int(value)
        except ValueError:
            return f"{name} is {value!r}, not an integer"
        if not -(2**63) <= number < 2**63:
            return f"{name} is {value}, outside the int64 range"
    return None


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
