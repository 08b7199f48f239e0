"""Make every item's (l1, l2, l3) triple unique, by one deterministic rule.

Items that share a triple form a collision. The item whose vector is closest to the triple's reconstruction
(c1[l1] + c2[l2] + c3[l3]; ties: the earlier input row) keeps it; an item of an existing catalog always keeps its
codes and wins every collision. Each other item (taken in the order: triple, distance, input row) moves to the
free triple nearest its vector:

1. the same (l1, l2) prefix, the nearest unused level-3 code by distance of its level-2 residual
   (x - c1[l1] - c2[l2]) to the level-3 centroids;
2. if that prefix has no free level-3 code: the next-nearest l2 under the same l1 (by distance of x - c1[l1] to the
   level-2 centroids), then its nearest free l3;
3. if every prefix under l1 is full: the next-nearest l1, and so on.

When the catalog has more items than K1 * K2 * K3 triples, `CodebookFullError` is raised before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ugt_ensemble.catalog.residual_kmeans import Codebooks, Level, nearest_codes
from ugt_ensemble.errors import InputFileError

#: Level-3 candidates looked up at once per moved item: at least this many, and more than its prefix holds items
#: (so the nearest free code is among them unless other items were moved into the prefix).
CANDIDATES = 32
#: Moved items handled per batch; most candidates per item (beyond them, every code is ranked).
BATCH = 131_072
MOST_CANDIDATES = 128
#: A two-level level 3 looks for candidates in this many cells nearest the residual's own.
NEAR_CELLS = 8


class CodebookFullError(InputFileError):
    """More items than the codebooks have triples."""


@dataclass
class CollisionStats:
    """What resolution found and did: colliding triples, moved items and how far each moved."""

    colliding_triples: int = 0
    moved_items: int = 0
    moved_within_prefix: int = 0
    moved_to_other_l2: int = 0
    moved_to_other_l1: int = 0
    #: How many nearer level-3 codes were taken before the one a moved item got (max over moved items).
    max_level3_rank: int = 0
    moved_rows: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {
            "colliding_triples": self.colliding_triples,
            "moved_items": self.moved_items,
            "moved_within_prefix": self.moved_within_prefix,
            "moved_to_other_l2": self.moved_to_other_l2,
            "moved_to_other_l1": self.moved_to_other_l1,
            "max_level3_rank": self.max_level3_rank,
        }


def check_capacity(items: int, codebooks: Codebooks) -> None:
    k1, k2, k3 = codebooks.used_sizes
    if items > k1 * k2 * k3:
        raise CodebookFullError(
            f"{items} items need unique (l1, l2, l3) triples but the codebooks hold only {k1} x {k2} x {k3} = "
            f"{k1 * k2 * k3}; use larger --codebook-sizes"
        )


def triple_keys(codes: np.ndarray, codebooks: Codebooks) -> np.ndarray:
    s = codebooks.codebook_sizes
    return (codes[:, 0] * s[1] + codes[:, 1]) * s[2] + codes[:, 2]


def resolve_collisions(
    codes: np.ndarray, vectors: np.ndarray, distances: np.ndarray, codebooks: Codebooks, pinned: np.ndarray
) -> CollisionStats:
    """Rewrite `codes` (int64 (n, 3), in place) so that no two rows and no row and `pinned` (int64 (m, 3), the
    existing catalog's codes) share a triple. `distances`: each row's squared distance to its reconstruction;
    `vectors`: the rows' embeddings (only moved rows are read)."""
    check_capacity(len(codes) + len(pinned), codebooks)
    keys = triple_keys(codes, codebooks)
    pinned_keys = np.unique(triple_keys(pinned, codebooks)) if len(pinned) else np.zeros(0, np.int64)
    order = np.lexsort((np.arange(len(keys)), distances, keys))
    sorted_keys = keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    on_pinned = np.isin(sorted_keys, pinned_keys)
    keeps = first & ~on_pinned
    starts = np.flatnonzero(first)
    group_sizes = np.diff(np.append(starts, len(keys)))
    stats = CollisionStats(colliding_triples=int(np.count_nonzero((group_sizes > 1) | on_pinned[starts])))
    movers = order[~keeps]
    if movers.size == 0:
        return stats
    taken = _TakenTriples(np.union1d(pinned_keys, sorted_keys[keeps]), codebooks.codebook_sizes)
    sizes = codebooks.codebook_sizes
    prefixes, crowds = np.unique(np.concatenate([keys, pinned_keys]) // sizes[2], return_counts=True)
    crowd = crowds[np.searchsorted(prefixes, keys[movers] // sizes[2])]
    for start in range(0, len(movers), BATCH):
        batch = movers[start : start + BATCH]
        _move(codes, vectors, batch, crowd[start : start + BATCH], codebooks, taken, stats)
    return stats


class _TakenTriples:
    """The triples in use: a sorted array of keys plus those handed out while resolving."""

    def __init__(self, keys: np.ndarray, sizes: tuple[int, int, int]) -> None:
        self.keys, self.sizes = keys, sizes
        self.added: dict[int, set[int]] = {}

    def used_level3(self, l1: int, l2: int) -> set[int]:
        prefix = l1 * self.sizes[1] + l2
        lo, hi = np.searchsorted(self.keys, [prefix * self.sizes[2], (prefix + 1) * self.sizes[2]])
        used = set((self.keys[lo:hi] - prefix * self.sizes[2]).tolist())
        return used | self.added.get(prefix, set())

    def take(self, l1: int, l2: int, l3: int) -> None:
        self.added.setdefault(l1 * self.sizes[1] + l2, set()).add(l3)


def _move(
    codes: np.ndarray,
    vectors: np.ndarray,
    movers: np.ndarray,
    crowd: np.ndarray,
    codebooks: Codebooks,
    taken: _TakenTriples,
    stats: CollisionStats,
) -> None:
    """Move `movers` (in order) to their nearest free triples; `crowd`: how many items share each one's prefix."""
    c1, c2, c3 = codebooks.centroids
    residuals = vectors[movers] - c1[codes[movers, 0]] - c2[codes[movers, 1]]
    candidates = _candidates(residuals, crowd, codebooks.levels[2])
    prefix, used = None, set()
    for row, residual, nearest in zip(movers.tolist(), residuals, candidates):
        l1, l2 = int(codes[row, 0]), int(codes[row, 1])
        if (l1, l2) != prefix:
            prefix, used = (l1, l2), taken.used_level3(l1, l2)
        nearest = nearest.tolist()
        rank = next((r for r, code in enumerate(nearest) if code >= 0 and code not in used), None)
        if rank is not None:
            l3 = nearest[rank]
            stats.moved_within_prefix += 1
        else:
            l1, l2, l3, rank = _farther(vectors[row], residual, l1, l2, used, codebooks, taken, stats)
        if (l1, l2) == prefix:
            used.add(l3)
        taken.take(l1, l2, l3)
        codes[row] = (l1, l2, l3)
        stats.moved_items += 1
        stats.max_level3_rank = max(stats.max_level3_rank, rank)
        stats.moved_rows.append(row)


def _candidates(residuals: np.ndarray, crowd: np.ndarray, level3: Level) -> np.ndarray:
    """Each residual's nearest level-3 codes, nearest first (int32 (n, width), padded with -1): a power of two
    above its prefix's crowd, from `CANDIDATES` to `MOST_CANDIDATES`. For a two-level level 3, searched among the
    centroids of the `NEAR_CELLS` cells nearest the residual's cell (1/16 of the work at the defaults)."""
    wanted = np.minimum(MOST_CANDIDATES, np.maximum(CANDIDATES, 2 ** np.ceil(np.log2(crowd + 1)))).astype(np.int64)
    found = np.full((len(residuals), int(wanted.max())), -1, dtype=np.int32)
    if level3.coarse is None or level3.cells is None or len(level3.coarse) <= NEAR_CELLS:
        everything = np.arange(len(level3.centroids))
        _nearest_into(found, np.arange(len(residuals)), residuals, wanted, level3.centroids, everything)
        return found
    cell_of = nearest_codes(residuals, level3.coarse, 1)[:, 0]
    near = nearest_codes(level3.coarse, level3.coarse, NEAR_CELLS)
    for cell in np.unique(cell_of).tolist():
        rows = np.flatnonzero(cell_of == cell)
        pool = np.flatnonzero(np.isin(level3.cells, near[cell]))
        _nearest_into(found, rows, residuals[rows], wanted[rows], level3.centroids[pool], pool)
    return found


def _nearest_into(
    found: np.ndarray, rows: np.ndarray, residuals: np.ndarray, wanted: np.ndarray, centroids: np.ndarray,
    codes: np.ndarray,
) -> None:  # fmt: skip
    """found[rows[i], :w] = the codes of residuals[i]'s w nearest `centroids` (grouped by w)."""
    for count in np.unique(np.minimum(wanted, len(centroids))).tolist():
        part = np.flatnonzero(np.minimum(wanted, len(centroids)) == count)
        found[rows[part], :count] = codes[nearest_codes(residuals[part], centroids, count)]


def _farther(
    vector: np.ndarray,
    residual: np.ndarray,
    l1: int,
    l2: int,
    used: set[int],
    codebooks: Codebooks,
    taken: _TakenTriples,
    stats: CollisionStats,
) -> tuple[int, int, int, int]:
    """Rules 1-3 beyond the first candidates: every level-3 code of the prefix, then other l2, then other l1."""
    c1, c2, c3 = codebooks.centroids
    found = _free_level3(residual, used, c3)
    if found is not None:
        stats.moved_within_prefix += 1
        return l1, l2, *found
    for other_l1 in _by_distance(vector, c1, first=l1):
        level1_residual = vector - c1[other_l1]
        for other_l2 in _by_distance(level1_residual, c2, first=l2 if other_l1 == l1 else None):
            found = _free_level3(level1_residual - c2[other_l2], taken.used_level3(other_l1, other_l2), c3)
            if found is not None:
                if other_l1 == l1:
                    stats.moved_to_other_l2 += 1
                else:
                    stats.moved_to_other_l1 += 1
                return other_l1, other_l2, *found
    raise CodebookFullError("no free (l1, l2, l3) triple is left")  # check_capacity rules this out


def _free_level3(residual: np.ndarray, used: set[int], c3: np.ndarray) -> tuple[int, int] | None:
    """(l3, rank) of the nearest level-3 code not in `used`, or None when the prefix is full."""
    if len(used) >= len(c3):
        return None
    for rank, code in enumerate(np.argsort(((c3 - residual) ** 2).sum(axis=1), kind="stable").tolist()):
        if code not in used:
            return code, rank
    return None


def _by_distance(vector: np.ndarray, centroids: np.ndarray, first: int | None) -> list[int]:
    """Centroid indices nearest first; `first` (the current code) leads."""
    order = np.argsort(((centroids - vector) ** 2).sum(axis=1), kind="stable").tolist()
    if first is None:
        return order
    return [first, *(c for c in order if c != first)]
