"""Item embeddings for `semantic-ids`: item ids and one float vector per item, read from a file and validated.

Accepted layouts (the format comes from the suffix):

- Parquet (.parquet, .pq) or CSV (.csv): a column `item_id` (integers) and the vector as either
  - one list column (Parquet list / fixed-size list of numbers; in CSV a field such as `"[0.1, 0.2, 0.3]"` or
    `"0.1 0.2 0.3"`), chosen with `vector_column`, or found alone when the table has exactly one list column; or
  - numbered columns `e0, e1, ..., eN` (any other prefix with `vector_prefix`), all numeric.
  Other columns are ignored here (`--keep-columns` passes them through to the catalog).
- NPY (.npy): a 2-D numeric array, one row per item; item ids from `item_ids_path` (a 1-D integer .npy, or a text
  file of one integer per line with an optional `item_id` header line), else 0..N-1.
- NPZ (.npz): an array `embeddings` (or the archive's only 2-D array) and optionally `item_ids` (1-D integers);
  loaded with `allow_pickle=False`.

Checks: at least one item; item ids non-negative int64 and unique; every vector the same length; every component
a finite number (also after the cast to float32). Errors name the file, the row (CSV: its line) and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ugt_ensemble.catalog.catalog import MAX_REPORTED, data_row_label
from ugt_ensemble.errors import InputFileError, MissingFileError

PARQUET_SUFFIXES = (".parquet", ".pq")
SUFFIXES = (*PARQUET_SUFFIXES, ".csv", ".npy", ".npz")


@dataclass(frozen=True)
class Embeddings:
    """Validated embeddings: `item_ids` int64 (N,), `vectors` float32 (N, d) C-contiguous."""

    item_ids: np.ndarray
    vectors: np.ndarray
    source: str
    row_label: Callable[[int], str] = data_row_label

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])


def load_embeddings(
    path: str | Path,
    vector_column: str | None = None,
    vector_prefix: str | None = None,
    item_ids_path: str | Path | None = None,
) -> Embeddings:
    """Read and validate an embeddings file (layouts: the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"embeddings {path}: no such file")
    suffix = path.suffix.lower()
    source = f"embeddings {path}"
    if suffix not in SUFFIXES:
        raise InputFileError(f"{source}: unknown format {suffix or '(no suffix)'}; expected one of {list(SUFFIXES)}")
    if suffix in (".npy", ".npz"):
        if vector_column or vector_prefix:
            raise InputFileError(f"{source}: --vector-column/--vector-prefix apply to Parquet and CSV files only")
        ids, vectors = _read_numpy(path, source, item_ids_path)
        label = data_row_label
    else:
        from ugt_ensemble.catalog.embedding_tables import read_table_embeddings

        if item_ids_path is not None:
            raise InputFileError(f"{source}: --item-ids applies to .npy/.npz files (this file has an item_id column)")
        parquet = suffix in PARQUET_SUFFIXES
        ids, vectors, label = read_table_embeddings(path, parquet, vector_column, vector_prefix)
    return validated(ids, vectors, source, label)


def validated(ids: np.ndarray, vectors: np.ndarray, source: str, label: Callable[[int], str]) -> Embeddings:
    """`Embeddings` from raw arrays, or `InputFileError` naming `source`, rows and fields."""
    if vectors.ndim != 2:
        raise InputFileError(f"{source}: expected a 2-D array (items x dimensions), got shape {vectors.shape}")
    if len(ids) == 0 or vectors.shape[0] == 0:
        raise InputFileError(f"{source}: no items (empty file)")
    if vectors.shape[1] == 0:
        raise InputFileError(f"{source}: the vectors have no components")
    if len(ids) != vectors.shape[0]:
        raise InputFileError(f"{source}: {len(ids)} item ids for {vectors.shape[0]} vectors")
    if not np.issubdtype(vectors.dtype, np.number) or np.issubdtype(vectors.dtype, np.complexfloating):
        raise InputFileError(f"{source}: vectors have dtype {vectors.dtype}, expected real numbers")
    with np.errstate(over="ignore"):
        vectors32 = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_ids(ids, source, label)
    _check_finite(vectors32, source, label)
    return Embeddings(ids.astype(np.int64, copy=False), vectors32, source, label)


def _check_ids(ids: np.ndarray, source: str, label: Callable[[int], str]) -> None:
    if not np.issubdtype(ids.dtype, np.integer):
        raise InputFileError(f"{source}: item ids have dtype {ids.dtype}, expected integers")
    if ids.dtype == np.uint64 and ids.max() > np.iinfo(np.int64).max:
        bad = int(np.argmax(ids > np.iinfo(np.int64).max))
        raise InputFileError(f"{source}: {label(bad)}: item_id {ids[bad]} is above the int64 range")
    ids = ids.astype(np.int64, copy=False)
    negative = np.flatnonzero(ids < 0)
    if negative.size:
        rows = ", ".join(f"{label(i)} ({ids[i]})" for i in negative[:MAX_REPORTED])
        raise InputFileError(f"{source}: {negative.size} negative item_id(s) (catalog ids are >= 0): {rows}")
    order = np.argsort(ids, kind="stable")
    repeated = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if repeated.size:
        pairs = "; ".join(f"{ids[order[r]]} at {label(order[r])} and {label(order[r + 1])}"
                          for r in repeated[:MAX_REPORTED])  # fmt: skip
        raise InputFileError(f"{source}: {repeated.size} duplicate item_id(s): {pairs}")


def _check_finite(vectors: np.ndarray, source: str, label: Callable[[int], str]) -> None:
    finite = np.isfinite(vectors)
    if finite.all():
        return
    rows, columns = np.nonzero(~finite)
    cells = ", ".join(f"{label(r)} component {c} ({vectors[r, c]})"
                      for r, c in zip(rows[:MAX_REPORTED], columns[:MAX_REPORTED]))  # fmt: skip
    raise InputFileError(
        f"{source}: {rows.size} component(s) are NaN, infinite or beyond the float32 range: {cells}"
    )


def _read_numpy(path: Path, source: str, item_ids_path: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputFileError(f"{source}: not a readable {path.suffix} file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        vectors, ids = loaded, None
    else:
        with loaded:
            vectors, ids = _npz_arrays(loaded, source)
    if ids is not None and item_ids_path is not None:
        raise InputFileError(f"{source}: has an item_ids array; leave out --item-ids")
    if ids is None:
        ids = read_id_file(Path(item_ids_path)) if item_ids_path else np.arange(len(vectors), dtype=np.int64)
    if ids.ndim != 1:
        raise InputFileError(f"{source}: item ids must be 1-D, got shape {ids.shape}")
    return ids, vectors


def _npz_arrays(archive, source: str) -> tuple[np.ndarray, np.ndarray | None]:  # noqa: ANN001 - an NpzFile
    names = list(archive.files)
    try:
        if "embeddings" in names:
            vectors = archive["embeddings"]
        else:
            two_d = [n for n in names if archive[n].ndim == 2]
            if len(two_d) != 1:
                raise InputFileError(f"{source}: expected an array named 'embeddings' (arrays: {names[:10]})")
            vectors = archive[two_d[0]]
        ids = archive["item_ids"] if "item_ids" in names else None
    except ValueError as exc:  # an object array refused by allow_pickle=False
        raise InputFileError(f"{source}: cannot load an array ({exc})") from None
    return vectors, ids


def read_id_file(path: Path) -> np.ndarray:
    """Item ids, one per row of a .npy vector or one integer per line of a text file (header `item_id` allowed)."""
    source = f"item ids {path}"
    if not path.is_file():
        raise MissingFileError(f"{source}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            ids = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputFileError(f"{source}: not a readable .npy file ({exc})") from None
        if not np.issubdtype(ids.dtype, np.integer):
            raise InputFileError(f"{source}: dtype {ids.dtype}, expected integers")
        return ids
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{source}: cannot read ({type(exc).__name__})") from None
    values = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or (number == 1 and text == "item_id"):
            continue
        try:
            value = int(text)
        except ValueError:
            raise InputFileError(f"{source} line {number}: not an integer item id") from None
        if not -(2**63) <= value < 2**63:
            raise InputFileError(f"{source} line {number}: item id outside the int64 range")
        values.append(value)
    return np.array(values, dtype=np.int64)
