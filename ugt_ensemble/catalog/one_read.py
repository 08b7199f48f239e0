"""A deploy's catalog, its index and its set columns from one read of a CSV file, each sort done once.

`load_catalog`, `Catalog.index` and `read_catalog_columns` one after the other parse the file twice and sort the
item ids and the code keys twice (the duplicate checks, then the index): 10M items, about 4 s of the 11 s. Here
pyarrow reads item_id, l1, l2, l3 as int64 and the set columns as text in one pass, the codes are range-checked,
and the duplicate checks run on the index's sorted arrays. For anything else (no pyarrow, Parquet, a file pyarrow
does not take as it is, set columns named like the code columns, an invalid catalog) `read_catalog_indexed` returns
None, and the caller reads with `load_catalog` and `read_catalog_columns`, which word every problem with its line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ugt_ensemble.catalog.catalog import COLUMNS, Catalog
from ugt_ensemble.catalog.files import PARQUET_SUFFIXES, CatalogColumn, arrow_text_columns
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.runtime.catalog_index import CatalogIndex

LOGGER = logging.getLogger(__name__)
#: Item ids in file order and the set columns, as `read_catalog_columns` returns them.
ReadColumns = tuple[np.ndarray, list[CatalogColumn]]


def read_catalog_indexed(
    path: str | Path, codebook_sizes: tuple[int, int, int], names: tuple[str, ...] = ()
) -> tuple[Catalog, CatalogIndex, ReadColumns | None] | None:
    """The catalog of a well-formed CSV file, its index, and its `names` columns (None without names); or None
    (see the module docstring)."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES or len(set(names)) < len(names) or set(names) & set(COLUMNS):
        return None
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:
        return None
    try:
        types = {**dict.fromkeys(COLUMNS, pa.int64()), **dict.fromkeys(names, pa.string())}
        convert = pa_csv.ConvertOptions(include_columns=[*COLUMNS, *names], column_types=types,
                                        strings_can_be_null=False)  # fmt: skip
        table = pa_csv.read_csv(path, convert_options=convert)
        if table.num_rows == 0 or any(table.column(c).null_count for c in COLUMNS):
            return None
        values = np.empty((table.num_rows, len(COLUMNS)), dtype=np.int64)
        for position, name in enumerate(COLUMNS):
            values[:, position] = table.column(name).to_numpy()
        columns = arrow_text_columns(path, table, names, len(COLUMNS)) if names else None
    except InputFileError:  # a set column of another type: read again by the readers that word it
        return None
    except Exception:  # noqa: BLE001 - pyarrow raises many types; the strict readers explain the problem
        return None
    item_ids, codes = values[:, 0].copy(), values[:, 1:].copy()
    if not _in_range(item_ids, codes, codebook_sizes):
        return None
    index = CatalogIndex(item_ids, codes, codebook_sizes)
    if _repeats(index.item_ids) or _repeats(index.code_keys):  # sorted: a repeat sits beside its twin
        return None
    LOGGER.info("read %d catalog rows (and column(s) %s) from %s in one pass", len(item_ids), list(names), path)
    catalog = Catalog(item_ids, codes, tuple(codebook_sizes), f"catalog {path}")
    return catalog, index, (item_ids, columns) if columns is not None else None


def _in_range(item_ids: np.ndarray, codes: np.ndarray, sizes: tuple[int, int, int]) -> bool:
    """No negative item id (-1 marks padding) and every code inside its codebook."""
    return bool((item_ids >= 0).all() and ((codes >= 0) & (codes < np.asarray(sizes, dtype=np.int64))).all())


def _repeats(ordered: np.ndarray) -> bool:
    return bool(len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any())
