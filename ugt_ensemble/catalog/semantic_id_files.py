"""The files of `semantic-ids`: the catalog it writes (CSV or Parquet by suffix), the columns passed through to it,
and the codebooks and report beside it (`items.csv` -> `items.codebooks.npz`, `items.report.json`)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ugt_ensemble.catalog.catalog import COLUMNS
from ugt_ensemble.catalog.files import PARQUET_SUFFIXES, read_catalog_columns
from ugt_ensemble.errors import ConfigError, InputFileError, MissingDependencyError

CODEBOOKS_SUFFIX = ".codebooks.npz"
REPORT_SUFFIX = ".report.json"


def codebooks_path(catalog: Path) -> Path:
    """Where the codebooks of `catalog` are saved (beside it)."""
    return catalog.with_name(catalog.stem + CODEBOOKS_SUFFIX)


def report_path(catalog: Path) -> Path:
    return catalog.with_name(catalog.stem + REPORT_SUFFIX)


def check_output(path: Path, keep_columns: tuple[str, ...]) -> None:
    """Refuse an output suffix or kept column names the catalog cannot take, before any work."""
    if path.suffix.lower() not in (".csv", *PARQUET_SUFFIXES):
        raise ConfigError(f"--output {path}: the catalog is written as .csv, .parquet or .pq")
    if not path.parent.is_dir():
        raise ConfigError(f"--output {path}: no directory {path.parent}")
    clash = [name for name in keep_columns if name in COLUMNS]
    if clash or len(set(keep_columns)) != len(keep_columns):
        raise ConfigError(f"--keep-columns: {clash or list(keep_columns)} repeat a catalog column or each other")


def kept_columns(
    sources: list[Path], names: tuple[str, ...], item_ids: np.ndarray
) -> tuple[dict[str, np.ndarray], int]:
    """The `names` columns (text) for `item_ids`: from the first source that has the item, '' where none does.
    Returns the columns and how many items no source had."""
    columns = {name: np.full(len(item_ids), "", dtype=object) for name in names}
    found = np.zeros(len(item_ids), dtype=bool)
    if not names:
        return columns, 0
    for source in sources:
        ids, read = read_catalog_columns(source, names)
        if len(ids) == 0:
            continue
        order = np.argsort(ids, kind="stable")
        rows = order[np.searchsorted(ids[order], item_ids).clip(max=len(ids) - 1)]
        hit = ~found & (ids[rows] == item_ids)
        for column in read:
            texts = np.array([*column.values, ""], dtype=object)[column.codes]  # code -1 -> ""
            columns[column.name][hit] = texts[rows[hit]]
        found |= hit
    return columns, int(np.count_nonzero(~found))


def write_catalog(path: Path, item_ids: np.ndarray, codes: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    """The catalog (item_id,l1,l2,l3 then `extra`), written to a temporary file and renamed over `path`."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        _atomic(path, lambda tmp: _write_parquet(tmp, item_ids, codes, extra))
    else:
        _atomic(path, lambda tmp: _write_csv(tmp, item_ids, codes, extra))


def write_report(path: Path, report: dict) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8"))


def save_codebooks(path: Path, save: Callable[[Path], None]) -> None:
    _atomic(path, save)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_csv(path: Path, item_ids: np.ndarray, codes: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, *extra])
        for chunk in _row_chunks(item_ids, codes, extra):
            writer.writerows(chunk)


def _row_chunks(item_ids: np.ndarray, codes: np.ndarray, extra: dict[str, np.ndarray]) -> Iterator[list]:
    step = 100_000
    for start in range(0, len(item_ids), step):
        part = slice(start, start + step)
        columns = [item_ids[part].tolist(), *(codes[part, i].tolist() for i in range(3))]
        columns += [values[part].tolist() for values in extra.values()]
        yield list(zip(*columns))


def _write_parquet(path: Path, item_ids: np.ndarray, codes: np.ndarray, extra: dict[str, np.ndarray]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(f"--output {path}: writing Parquet needs pyarrow; or write a .csv") from None
    data = {"item_id": item_ids, **{name: codes[:, i] for i, name in enumerate(COLUMNS[1:])}}
    table = pa.table({**{k: pa.array(v, pa.int64()) for k, v in data.items()},
                      **{k: pa.array(v.tolist(), pa.string()) for k, v in extra.items()}})  # fmt: skip
    pq.write_table(table, path)


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputFileError(f"{what} {path}: no such file")
