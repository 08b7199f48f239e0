"""`Catalog`: validated item_id -> (l1, l2, l3) mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, code_keys

COLUMNS: tuple[str, ...] = ("item_id", "l1", "l2", "l3")
#: How many offending rows an error message lists.
MAX_REPORTED = 5


def data_row_label(i: int) -> str:
    """Label of data row i (0-based) of a table without a header line."""
    return f"row {i + 1}"


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: unique non-negative item ids, unique in-range code triples."""

    item_ids: np.ndarray
    codes: np.ndarray
    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    source: str = "synthetic catalog"

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_arrays(
        cls,
        item_ids: np.ndarray,
        codes: np.ndarray,
        codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES,
        source: str = "catalog",
        row_label: Callable[[int], str] = data_row_label,
    ) -> Catalog:
        """Validate and wrap arrays; `InputFileError` names `source` and the offending rows."""
        item_ids = np.asarray(item_ids, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64).reshape(-1, 3)
        if len(item_ids) == 0:
            raise InputFileError(f"{source}: the catalog has no items")
        problems = [
            *_out_of_range(item_ids, codes, codebook_sizes, row_label),
            *_duplicates(item_ids, "item_id", row_label),
            *_duplicates(code_keys(codes, codebook_sizes), "(l1, l2, l3) triple", row_label, codes),
        ]
        if problems:
            raise InputFileError(f"{source}: invalid catalog:\n  " + "\n  ".join(problems))
        return cls(item_ids, codes, tuple(codebook_sizes), source)

    def fingerprint(self) -> str:
        """A short digest of the item -> code mapping (two catalogs with the same one match)."""
        return self.index().fingerprint()

    def index(self) -> CatalogIndex:
        """The runtime lookup index (what the preprocess/postprocess models load)."""
        return CatalogIndex(self.item_ids, self.codes, self.codebook_sizes)

    def prefix_tables(self) -> PrefixTables:
        """The beam-search constraint tables."""
        return PrefixTables.from_codes(self.codes, self.codebook_sizes)


def _out_of_range(
    item_ids: np.ndarray, codes: np.ndarray, sizes: tuple[int, int, int], label: Callable[[int], str]
) -> list[str]:
    problems = []
    bad_ids = np.flatnonzero(item_ids < 0)
    if bad_ids.size:
        rows = ", ".join(f"{label(i)} ({item_ids[i]})" for i in bad_ids[:MAX_REPORTED])
        problems.append(f"{bad_ids.size} negative item_id(s) (-1 marks padding): {rows}")
    for level, size in enumerate(sizes):
        column = codes[:, level]
        bad = np.flatnonzero((column < 0) | (column >= size))
        if bad.size:
            rows = ", ".join(f"{label(i)} ({column[i]})" for i in bad[:MAX_REPORTED])
            problems.append(f"{bad.size} value(s) of l{level + 1} outside [0, {size}): {rows}")
    return problems


def _duplicates(
    keys: np.ndarray,
    what: str,
    label: Callable[[int], str],
    codes: np.ndarray | None = None,
) -> list[str]:
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if not repeated.size:
        return []
    examples = []
    for r in repeated[:MAX_REPORTED]:
        first, second = order[r], order[r + 1]
        value = tuple(codes[first].tolist()) if codes is not None else int(keys[first])
        examples.append(f"{value} at {label(first)} and {label(second)}")
    return [f"{repeated.size} duplicate {what}(s): " + "; ".join(examples)]
