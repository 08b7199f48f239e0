"""Residual k-means (RQ-KMeans): three codebooks, each trained by faiss k-means on what the levels above leave.

Level 1 clusters the vectors into K1 centroids; level 2 clusters the residuals x - c1[l1] into K2; level 3 the
residuals x - c1[l1] - c2[l2] into K3. K_l is the level's codebook size, capped at the number of items. Each level
trains on a seeded random sample of min(N, max(K, min(points_per_centroid * K, max_train_points))) residuals,
then every item is assigned to its nearest centroid (L2, in chunks). A level of more than `flat_up_to` centroids
(default 1024: levels 2 and 3 of the default codebooks) is trained and searched as two-level k-means
(`two_level_kmeans`): ~sqrt(K) coarse cells, then the nearest centroid inside the nearest cell.
The codebooks are saved as an .npz (`level1`..`level3`: float32 (K_l, d); for a two-level level also
`levelN_coarse` (cells, d) and `levelN_cells` (K_l,): each centroid's cell; `codebook_sizes`) so new items can be
encoded later the same way.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ugt_ensemble.catalog.two_level_kmeans import CellCallback, assign_two_level, coarse_cells, train_fine
from ugt_ensemble.errors import InputFileError, MissingDependencyError, MissingFileError

LEVELS = 3
#: Called after each k-means iteration: (level 1-3, iteration, iterations, mean squared distance).
IterationCallback = Callable[[int, int, int, float], None]


@dataclass(frozen=True)
class KMeansSettings:
    """How each level is trained."""

    seed: int = 0
    iterations: int = 20
    points_per_centroid: int = 256
    max_train_points: int = 262_144
    #: Levels with more centroids are two-level k-means.
    flat_up_to: int = 1024
    #: Items assigned per faiss search call.
    chunk_size: int = 65_536

    def train_points(self, items: int, k: int) -> int:
        return min(items, max(k, min(self.points_per_centroid * k, self.max_train_points)))


@dataclass(frozen=True)
class Level:
    """One level's centroids (float32 (K, d)); for two-level k-means also its coarse cells and each centroid's."""

    centroids: np.ndarray
    coarse: np.ndarray | None = None
    cells: np.ndarray | None = None

    def assign(self, vectors: np.ndarray, chunk_size: int) -> np.ndarray:
        """The code (int64) of each row of `vectors`."""
        faiss = faiss_module()
        if self.coarse is not None and self.cells is not None:
            return assign_two_level(faiss, vectors, self.centroids, self.coarse, self.cells, chunk_size)
        index = faiss.IndexFlatL2(self.centroids.shape[1])
        index.add(self.centroids)
        return np.concatenate([index.search(vectors[s : s + chunk_size], 1)[1][:, 0].astype(np.int64)
                               for s in range(0, len(vectors), chunk_size)])  # fmt: skip


@dataclass(frozen=True)
class Codebooks:
    """The three levels and the codebook sizes the codes live in."""

    levels: tuple[Level, ...]
    codebook_sizes: tuple[int, int, int]

    @property
    def centroids(self) -> tuple[np.ndarray, ...]:
        return tuple(level.centroids for level in self.levels)

    @property
    def dimension(self) -> int:
        return int(self.centroids[0].shape[1])

    @property
    def used_sizes(self) -> tuple[int, ...]:
        """K_l of each level (at most the codebook size)."""
        return tuple(int(c.shape[0]) for c in self.centroids)

    def save(self, path: Path) -> None:
        arrays = {}
        for i, level in enumerate(self.levels, start=1):
            arrays[f"level{i}"] = level.centroids
            if level.coarse is not None and level.cells is not None:
                arrays[f"level{i}_coarse"], arrays[f"level{i}_cells"] = level.coarse, level.cells
        with open(path, "wb") as handle:
            np.savez(handle, codebook_sizes=np.array(self.codebook_sizes, dtype=np.int64), **arrays)

    @classmethod
    def load(cls, path: Path, codebook_sizes: tuple[int, int, int], dimension: int) -> Codebooks:
        """Load with `allow_pickle=False`; refuses (naming the file) arrays of the wrong shape, dtype or sizes."""
        source = f"codebooks {path}"
        if not path.is_file():
            raise MissingFileError(f"{source}: no such file (it is written beside the catalog by a first run)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InputFileError(f"{source}: not a readable .npz file ({type(exc).__name__})") from None
        missing = [n for n in ("codebook_sizes", "level1", "level2", "level3") if n not in arrays]
        if missing:
            raise InputFileError(f"{source}: lacks array(s) {missing}")
        saved = tuple(int(v) for v in arrays["codebook_sizes"].reshape(-1))
        if saved != tuple(codebook_sizes):
            raise InputFileError(f"{source}: made for codebook sizes {saved}, not {tuple(codebook_sizes)}")
        levels = tuple(_level(source, arrays, i, codebook_sizes[i - 1], dimension) for i in range(1, LEVELS + 1))
        return cls(levels, tuple(codebook_sizes))


def _level(source: str, arrays: dict[str, np.ndarray], level: int, size: int, dimension: int) -> Level:
    centroids = _floats(source, f"level{level}", arrays[f"level{level}"], size, dimension)
    if f"level{level}_coarse" not in arrays and f"level{level}_cells" not in arrays:
        return Level(centroids)
    coarse = _floats(source, f"level{level}_coarse", arrays.get(f"level{level}_coarse"), len(centroids), dimension)
    cells = arrays.get(f"level{level}_cells")
    if (cells is None or cells.shape != (len(centroids),) or not np.issubdtype(cells.dtype, np.integer)
            or cells.min() < 0 or cells.max() >= len(coarse)):  # fmt: skip
        raise InputFileError(f"{source}: level{level}_cells must give each of the {len(centroids)} level-{level} "
                             f"centroids a cell in [0, {len(coarse)})")  # fmt: skip
    return Level(centroids, coarse, cells.astype(np.int64))


def _floats(source: str, name: str, array: np.ndarray | None, most: int, dimension: int) -> np.ndarray:
    if array is None or array.ndim != 2 or array.shape[1] != dimension or not 1 <= array.shape[0] <= most:
        shape = None if array is None else array.shape
        raise InputFileError(f"{source}: {name} has shape {shape}; expected (K, {dimension}) with 1 <= K <= {most} "
                             f"(the embeddings have {dimension} dimensions)")  # fmt: skip
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise InputFileError(f"{source}: {name} must hold finite floats (dtype {array.dtype})")
    return np.ascontiguousarray(array, dtype=np.float32)


def faiss_module():  # noqa: ANN201 - the faiss module
    """faiss, its OpenMP threads told to sleep rather than spin while they wait (unless OMP_WAIT_POLICY is set):
    on 2 cores shared with other jobs, spinning threads made level-3 training 14x slower (17.5 s -> 1.25 s at 100k
    items). It takes effect only when faiss is the first to load OpenMP in the process."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError(
            "semantic-ids needs faiss-cpu (pip install 'ugt-ensemble[semantic-ids]' or pip install faiss-cpu)"
        ) from None
    return faiss


def train_level(
    sample: np.ndarray,
    k: int,
    level: int,
    settings: KMeansSettings,
    on_iteration: IterationCallback | None = None,
    on_cell: CellCallback | None = None,
) -> Level:
    """A level of k centroids trained on `sample`: flat k-means, or two-level when k > settings.flat_up_to."""
    if k <= settings.flat_up_to:
        return Level(_kmeans(sample, k, level, settings, on_iteration))
    coarse = _kmeans(sample, coarse_cells(k), level, settings, on_iteration)
    faiss = faiss_module()
    seed = settings.seed + 1000 * (level + 1)
    coarse, centroids, cells = train_fine(faiss, sample, coarse, k, settings.iterations, seed, on_cell)
    return Level(centroids, coarse, cells)


def _kmeans(
    sample: np.ndarray, k: int, level: int, settings: KMeansSettings, on_iteration: IterationCallback | None
) -> np.ndarray:
    """k-means centroids (k, d) of `sample`, one faiss iteration per call so that progress can be shown."""
    faiss = faiss_module()
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=1, seed=settings.seed + level, max_points_per_centroid=1 << 30,
                          min_points_per_centroid=1, verbose=False)  # fmt: skip
    centroids = None
    for iteration in range(1, settings.iterations + 1):
        objective = kmeans.train(sample, init_centroids=centroids)
        centroids = kmeans.centroids
        if on_iteration:
            on_iteration(level, iteration, settings.iterations, float(objective) / len(sample))
    return np.ascontiguousarray(centroids, dtype=np.float32)


def assign_level(residuals: np.ndarray, level: Level, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code, its centroid subtracted from `residuals` in place; returns (codes, new squared norms)."""
    codes = level.assign(residuals, chunk_size)
    squared = np.empty(len(residuals), dtype=np.float32)
    for start in range(0, len(residuals), chunk_size):
        block = residuals[start : start + chunk_size]
        block -= level.centroids[codes[start : start + len(block)]]
        squared[start : start + len(block)] = np.einsum("ij,ij->i", block, block)
    return codes, squared


def nearest_codes(vectors: np.ndarray, centroids: np.ndarray, count: int) -> np.ndarray:
    """The `count` nearest centroids of each vector, nearest first (int64 (n, count))."""
    faiss = faiss_module()
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    _, nearest = index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(count, len(centroids)))
    return nearest.astype(np.int64)
