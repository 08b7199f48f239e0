"""Catalog prefix tables that constrain beam search to real items (all static shapes).

Level 1 is a dense validity mask. Levels 2 and 3 are CSR-style: the catalog's distinct (l1, l2)
pairs and its items are sorted lexicographically, and each prefix points at the contiguous run of
its children with an offset and a count. A beam gathers `offset + arange(max_children)` and masks
the slots past `count`, so memory stays O(catalog) however skewed the tree is.

A pair's index in the sorted pair list is `l2_offset[l1] + j` where `j` is the child slot the beam
chose at level 2, so level 3 needs no dense [1024, 4096] lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ugt_ensemble.runtime.contract import TABLE_NAMES


@dataclass(frozen=True)
class PrefixTables:
    """The constraint tables of one catalog.

    Attributes:
        l1_valid: bool [V1], True where some item has that level-1 code.
        l2_offset, l2_count: int64 [V1], the run of (l1, l2) pairs below each l1.
        pair_l2: int64 [P], the level-2 code of each pair, pairs sorted by (l1, l2).
        l3_offset, l3_count: int64 [P], the run of items below each pair.
        item_l3: int64 [N], the level-3 code of each item, items sorted by (l1, l2, l3).
    """

    l1_valid: np.ndarray
    l2_offset: np.ndarray
    l2_count: np.ndarray
    pair_l2: np.ndarray
    l3_offset: np.ndarray
    l3_count: np.ndarray
    item_l3: np.ndarray

    @property
    def max_l2_children(self) -> int:
        """Widest level-2 fan-out of any level-1 code."""
        return int(self.l2_count.max())

    @property
    def max_l3_children(self) -> int:
        """Widest level-3 fan-out of any (l1, l2) pair."""
        return int(self.l3_count.max())

    @classmethod
    def from_codes(cls, codes: np.ndarray, codebook_sizes: tuple[int, int, int]) -> PrefixTables:
        """Build the tables from unique, in-range code triples `codes` (int64 [N, 3])."""
        codes = np.asarray(codes, dtype=np.int64)
        order = np.lexsort((codes[:, 2], codes[:, 1], codes[:, 0]))
        codes = codes[order]
        v1 = codebook_sizes[0]

        pair_keys = codes[:, 0] * codebook_sizes[1] + codes[:, 1]
        pair_start = np.flatnonzero(np.r_[True, pair_keys[1:] != pair_keys[:-1]])
        pair_l1 = codes[pair_start, 0]
        l3_count = np.diff(np.r_[pair_start, len(codes)])

        l2_count = np.bincount(pair_l1, minlength=v1).astype(np.int64)
        return cls(
            l1_valid=l2_count > 0,
            l2_offset=_exclusive_cumsum(l2_count),
            l2_count=l2_count,
            pair_l2=codes[pair_start, 1].copy(),
            l3_offset=pair_start.astype(np.int64),
            l3_count=l3_count.astype(np.int64),
            item_l3=codes[:, 2].copy(),
        )

    def codes(self) -> np.ndarray:
        """Every catalog code triple (int64 [N, 3]), sorted lexicographically."""
        pair_l1 = np.repeat(np.arange(len(self.l2_count)), self.l2_count)
        pair_of_item = np.repeat(np.arange(len(self.pair_l2)), self.l3_count)
        return np.column_stack([pair_l1[pair_of_item], self.pair_l2[pair_of_item], self.item_l3]).astype(np.int64)

    def padded(self, fanout_caps: tuple[int, int]) -> dict[str, np.ndarray]:
        """The tables as a rules-aware model step reads them (`runtime.contract.TABLE_INPUTS`, by name) with one
        item set, the whole catalog: pair tables padded by the level-2 cap and item tables by the level-3 cap."""
        pairs, items = len(self.pair_l2) + fanout_caps[0], len(self.item_l3) + fanout_caps[1]
        arrays = (
            self.l2_offset, self.l2_count, _pad(self.pair_l2, pairs), _pad(self.l3_offset, pairs),
            _pad(self.l3_count, pairs), _pad(self.item_l3, items),
            (np.arange(pairs) < len(self.pair_l2))[None], (np.arange(items) < len(self.item_l3))[None],
        )  # fmt: skip
        return {name: np.ascontiguousarray(values) for name, values in zip(TABLE_NAMES, arrays)}

    def children_codes(self, l1: int, l2: int | None = None) -> np.ndarray:
        """The valid next-level codes below a prefix (for tests and debugging)."""
        start, count = self.l2_offset[l1], self.l2_count[l1]
        l2_codes = self.pair_l2[start : start + count]
        if l2 is None:
            return l2_codes
        (slot,) = np.flatnonzero(l2_codes == l2)
        pair = start + slot
        return self.item_l3[self.l3_offset[pair] : self.l3_offset[pair] + self.l3_count[pair]]


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    """int64 `values` followed by zeros up to `size`."""
    return np.concatenate([values, np.zeros(size - len(values), dtype=np.int64)]).astype(np.int64)


def _exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    out = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=out[1:])
    return out
