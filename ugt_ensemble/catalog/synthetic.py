"""A seeded synthetic catalog with a realistic semantic-ID tree (for demos, tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from ugt_ensemble.catalog.catalog import Catalog
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES

#: Level-2 codes reachable from one level-1 code (semantic IDs cluster: siblings share prefixes).
L2_PER_L1 = 16


def synthetic_catalog(
    num_items: int = 10_000, seed: int = 0, codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
) -> Catalog:
    """`num_items` items with ids 1..num_items and unique, clustered code triples."""
    v1, v2, v3 = codebook_sizes
    capacity = v1 * min(L2_PER_L1, v2) * v3
    if not 1 <= num_items <= capacity // 2:
        raise ConfigError(f"`num_items` must be in [1, {capacity // 2}], got {num_items}")
    rng = np.random.default_rng(seed)
    codes = np.zeros((0, 3), dtype=np.int64)
    while len(codes) < num_items:
        draw = 2 * (num_items - len(codes)) + 16
        l1 = rng.integers(0, v1, draw)
        l2 = (l1 * (v2 // v1) + rng.integers(0, L2_PER_L1, draw)) % v2
        l3 = rng.integers(0, v3, draw)
        codes = _unique_in_order(np.concatenate([codes, np.column_stack([l1, l2, l3])]))
    item_ids = np.arange(1, num_items + 1, dtype=np.int64)
    return Catalog(item_ids, codes[:num_items], tuple(codebook_sizes), f"synthetic catalog (seed {seed})")


def _unique_in_order(codes: np.ndarray) -> np.ndarray:
    _, first = np.unique(codes, axis=0, return_index=True)
    return codes[np.sort(first)]
