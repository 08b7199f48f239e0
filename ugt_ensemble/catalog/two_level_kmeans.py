"""Two-level k-means for a level with many centroids (the idea of faiss.contrib.clustering.two_level_clustering).

K centroids are trained as ~sqrt(K) coarse cells (faiss k-means), then k-means inside each cell on the training
points that fall in it, the cell getting a share of K proportional to its points (at least 1, at most its points).
An item's code is the nearest centroid of its nearest cell: about 2*sqrt(K) distances per item instead of K, an
approximate nearest-centroid search. The cells are saved with the codebooks, so new items are encoded the same way.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: Called during the fine k-means: (cells done, cells).
CellCallback = Callable[[int, int], None]


def coarse_cells(k: int) -> int:
    """How many coarse cells a level of `k` centroids gets."""
    return max(2, min(k, round(math.sqrt(k))))


def allocate(k: int, counts: np.ndarray) -> np.ndarray:
    """Centroids per cell: proportional to `counts`, each in [1, count], summing to `k` (needs sum >= k >= cells)."""
    share = k * counts / counts.sum()
    sizes = np.clip(np.floor(share).astype(np.int64), 1, counts)
    while sizes.sum() < k:
        room = np.where(sizes < counts, share - sizes, -np.inf)
        sizes[int(np.argmax(room))] += 1
    while sizes.sum() > k:
        excess = np.where(sizes > 1, sizes - share, -np.inf)
        sizes[int(np.argmax(excess))] -= 1
    return sizes


def train_fine(
    faiss,  # noqa: ANN001 - the faiss module
    sample: np.ndarray,
    coarse: np.ndarray,
    k: int,
    iterations: int,
    seed: int,
    on_cell: CellCallback | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coarse cells that hold training points, the k fine centroids (k, d) of `sample` and each centroid's
    cell (int64 (k,))."""
    cell_of_point = _nearest(faiss, coarse, sample)
    counts = np.bincount(cell_of_point, minlength=len(coarse))
    if (counts == 0).any():  # a cell no training point is nearest to gets no centroid: drop it
        coarse = coarse[counts > 0]
        cell_of_point = _nearest(faiss, coarse, sample)
        counts = np.bincount(cell_of_point, minlength=len(coarse))
    sizes = allocate(k, counts)
    order = np.argsort(cell_of_point, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    centroids, cells = [], []
    for cell in range(len(coarse)):
        points = sample[order[bounds[cell] : bounds[cell + 1]]]
        centroids.append(_cluster(faiss, points, int(sizes[cell]), iterations, seed + cell))
        cells.append(np.full(int(sizes[cell]), cell, dtype=np.int64))
        if on_cell:
            on_cell(cell + 1, len(coarse))
    return coarse, np.ascontiguousarray(np.concatenate(centroids), dtype=np.float32), np.concatenate(cells)


def _cluster(faiss, points: np.ndarray, k: int, iterations: int, seed: int) -> np.ndarray:  # noqa: ANN001
    if k >= len(points):
        return points[:k]
    kmeans = faiss.Kmeans(points.shape[1], k, niter=iterations, seed=seed, max_points_per_centroid=1 << 30,
                          min_points_per_centroid=1, verbose=False)  # fmt: skip
    kmeans.train(np.ascontiguousarray(points))
    return kmeans.centroids


def assign_two_level(
    faiss,  # noqa: ANN001 - the faiss module
    vectors: np.ndarray,
    centroids: np.ndarray,
    coarse: np.ndarray,
    cells: np.ndarray,
    chunk_size: int,
) -> np.ndarray:
    """The nearest centroid (int64) of each row within the row's nearest coarse cell."""
    cell_of_row = np.concatenate([_nearest(faiss, coarse, vectors[s : s + chunk_size])
                                  for s in range(0, len(vectors), chunk_size)])  # fmt: skip
    codes = np.empty(len(vectors), dtype=np.int64)
    order = np.argsort(cell_of_row, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cell_of_row, minlength=len(coarse)))])
    members = np.argsort(cells, kind="stable")
    member_bounds = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=len(coarse)))])
    for cell in range(len(coarse)):
        rows = order[bounds[cell] : bounds[cell + 1]]
        if rows.size:
            own = members[member_bounds[cell] : member_bounds[cell + 1]]
            codes[rows] = own[_nearest(faiss, centroids[own], vectors[rows])]
    return codes


def _nearest(faiss, centroids: np.ndarray, vectors: np.ndarray) -> np.ndarray:  # noqa: ANN001
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1][:, 0].astype(np.int64)
