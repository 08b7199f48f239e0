"""Vectorised construction of a catalog's constraint arrays (the prefix tables, the item-set tables and
what the rule packer reads), from the sorted code keys of a `CatalogIndex`.

"Item index" is an item's position in code order (`CatalogIndex.code_keys`); "pair index" is a (l1, l2)
pair's position in sorted order. Tables are padded past their end by the fan-out caps (pairs by C2cap,
items by C3cap), so a beam's `offset + slot` never runs past them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .catalog_index import CatalogIndex
from .contract import TABLE_NAMES
from .errors import ConfigError

(L2_OFFSET, L2_COUNT, PAIR_L2, L3_OFFSET, L3_COUNT, ITEM_L3, SET_PAIRS, SET_ITEMS) = TABLE_NAMES
#: Arrays the rule packer reads beside the tables (one .npy file each).
PAIR_L1 = "pair_l1"  # int64 [P]: the l1 code of each pair
ITEM_PAIR = "item_pair"  # int64 [N]: the pair index of each item
SET_PAIR_COUNTS = "set_pair_counts"  # int32 [S, P]: items of set s below each pair
SET_L1_PAIRS = "set_l1_pairs"  # int32 [S, V1]: pairs below each l1 code holding an item of set s
SET_MEMBERS = "set_members"  # int64 [M]: the sorted item indices of sets 1..S-1, one run after another
SET_OFFSETS = "set_offsets"  # int64 [S + 1]: set s's run is set_members[offsets[s]:offsets[s + 1]] (set 0: none)
PACKER_NAMES: tuple[str, ...] = (PAIR_L1, ITEM_PAIR, SET_PAIR_COUNTS, SET_L1_PAIRS, SET_MEMBERS, SET_OFFSETS)


def build_arrays(
    index: CatalogIndex, sets: Mapping[str, np.ndarray], caps: tuple[int, int]
) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """(set names in table order, {name: array}) for the `TABLE_NAMES` and `PACKER_NAMES` arrays.

    `sets` maps names to bool masks over the index's id order; set 0 is the whole catalog and sets
    1..S-1 are `sets` in name order. Raises `ConfigError` naming the cap a fan-out exceeds or the bad set.
    """
    arrays = prefix_arrays(index, caps)
    names = tuple(sorted(sets))
    masks = [np.ones(len(index), dtype=bool)] + [_code_order_mask(index, name, sets[name]) for name in names]
    arrays.update(set_arrays(masks, arrays, caps))
    return names, arrays


def fanouts(index: CatalogIndex) -> tuple[int, int]:
    """The catalog's widest level-2 fan-out (pairs below one l1 code) and level-3 fan-out (items below a pair)."""
    _, l2_count, _, l3_count = _pairs(index)
    return int(l2_count.max()), int(l3_count.max())


def prefix_arrays(index: CatalogIndex, caps: tuple[int, int]) -> dict[str, np.ndarray]:
    """The six prefix tables (padded by the caps) and the pair/item arrays of the packer."""
    v1, v2, v3 = index.codebook_sizes
    pair_keys, l2_count, starts, l3_count = _pairs(index)
    c2, c3 = caps
    for level, widest, cap in ((2, int(l2_count.max()), c2), (3, int(l3_count.max()), c3)):
        if widest > cap:
            raise ConfigError(
                f"level-{level} fan-out cap C{level}cap={cap}: the catalog's widest level-{level} fan-out is {widest} "
                f"children; export the model again with a cap of at least {widest}"
            )
    n, p = len(index), len(starts)
    l2_offset = np.zeros(v1, dtype=np.int64)
    np.cumsum(l2_count[:-1], out=l2_offset[1:])
    return {
        L2_OFFSET: l2_offset,
        L2_COUNT: l2_count,
        PAIR_L2: _padded(pair_keys % v2, p + c2),
        L3_OFFSET: _padded(starts, p + c2),
        L3_COUNT: _padded(l3_count, p + c2),
        ITEM_L3: _padded(np.asarray(index.code_keys) % v3, n + c3),
        PAIR_L1: pair_keys // v2,
        ITEM_PAIR: np.repeat(np.arange(p, dtype=np.int64), l3_count),
    }


def set_arrays(masks: list[np.ndarray], prefix: dict[str, np.ndarray], caps: tuple[int, int]) -> dict[str, np.ndarray]:
    """The set tables and the packer's per-set counts for `masks` (bool [N] each, in code order)."""
    starts, pair_l1 = prefix[L3_OFFSET][: len(prefix[PAIR_L1])], prefix[PAIR_L1]
    n, p, s, v1 = len(masks[0]), len(starts), len(masks), len(prefix[L2_COUNT])
    set_items = np.zeros((s, n + caps[1]), dtype=bool)
    set_pairs = np.zeros((s, p + caps[0]), dtype=bool)
    pair_counts = np.zeros((s, p), dtype=np.int32)
    l1_pairs = np.zeros((s, v1), dtype=np.int32)
    members, offsets = [], np.zeros(s + 1, dtype=np.int64)
    for k, mask in enumerate(masks):
        set_items[k, :n] = mask
        pair_counts[k] = np.add.reduceat(mask, starts, dtype=np.int32)
        set_pairs[k, :p] = pair_counts[k] > 0
        l1_pairs[k] = np.bincount(pair_l1[set_pairs[k, :p]], minlength=v1)
        members.append(np.flatnonzero(mask) if k else np.zeros(0, dtype=np.int64))
        offsets[k + 1] = offsets[k] + len(members[-1])
    return {
        SET_PAIRS: set_pairs,
        SET_ITEMS: set_items,
        SET_PAIR_COUNTS: pair_counts,
        SET_L1_PAIRS: l1_pairs,
        SET_MEMBERS: np.concatenate(members).astype(np.int64),
        SET_OFFSETS: offsets,
    }


def _pairs(index: CatalogIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pair keys l1 * V2 + l2 [P], pairs below each l1 [V1], first item of each pair [P], items below each
    pair [P])."""
    v1, _, v3 = index.codebook_sizes
    item_pairs = np.asarray(index.code_keys) // v3
    starts = np.flatnonzero(np.r_[True, item_pairs[1:] != item_pairs[:-1]])
    pair_keys = item_pairs[starts]
    l2_count = np.bincount(pair_keys // index.codebook_sizes[1], minlength=v1).astype(np.int64)
    l3_count = np.diff(np.r_[starts, len(item_pairs)]).astype(np.int64)
    return pair_keys, l2_count, starts.astype(np.int64), l3_count


def _code_order_mask(index: CatalogIndex, name: str, mask: np.ndarray) -> np.ndarray:
    """A set's mask over the id order, moved to code order; `ConfigError` naming the set unless bool [N]."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"item set names must be non-empty strings, got {name!r}")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (len(index),):
        raise ConfigError(
            f"item set {name!r}: expected a bool mask of the catalog's {len(index)} items in id order, "
            f"got {mask.dtype} {list(mask.shape)}"
        )
    out = np.empty(len(index), dtype=bool)
    out[np.asarray(index.code_order)] = mask
    return out


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.int64)
    out[: len(values)] = values
    return out
