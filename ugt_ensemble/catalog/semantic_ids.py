"""Semantic IDs from item embeddings: residual k-means codes (`residual_kmeans`), made unique (`code_collisions`).

`assign_semantic_ids` encodes every item of an `Embeddings`, or, given an existing catalog and its codebooks, only
the items the catalog lacks: old items keep their codes and win every collision. Deterministic for a seed (same
input, same faiss build and thread count). The report (a JSON-able dict) gives the codes used per level, the
collisions and how they were resolved, and the quantisation error per level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ugt_ensemble.catalog.catalog import Catalog
from ugt_ensemble.catalog.code_collisions import check_capacity, resolve_collisions
from ugt_ensemble.catalog.embeddings import Embeddings
from ugt_ensemble.catalog.residual_kmeans import LEVELS, Codebooks, KMeansSettings, assign_level, train_level
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES

#: Seconds between two progress lines about k-means iterations (the first and last are always shown).
ITERATION_LINE_SECONDS = 2.0


@dataclass(frozen=True)
class SemanticIdSettings:
    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    kmeans: KMeansSettings = KMeansSettings()


@dataclass
class SemanticIds:
    """The catalog's item ids and codes (existing items first, in the catalog's order; then the new ones in input
    order), the codebooks and the report."""

    item_ids: np.ndarray
    codes: np.ndarray
    codebooks: Codebooks
    report: dict = field(default_factory=dict)


def assign_semantic_ids(
    embeddings: Embeddings,
    settings: SemanticIdSettings = SemanticIdSettings(),
    progress: StepProgress | None = None,
    existing: Catalog | None = None,
    codebooks: Codebooks | None = None,
) -> SemanticIds:
    """Codes for every item of `embeddings` (or, with `existing` and its `codebooks`, for the items it lacks)."""
    progress = progress or StepProgress.silent()
    _check_sizes(settings.codebook_sizes)
    if (existing is None) != (codebooks is None):
        raise ValueError("an existing catalog and its codebooks go together")
    new = np.ones(len(embeddings), dtype=bool) if existing is None else ~np.isin(embeddings.item_ids, existing.item_ids)
    vectors = embeddings.vectors[new] if existing is not None else embeddings.vectors
    pinned = existing.codes if existing is not None else np.zeros((0, 3), np.int64)
    seconds: dict[str, float] = {}
    if len(vectors) == 0:
        assert existing is not None and codebooks is not None
        return _result(existing, embeddings.item_ids[new], np.zeros((0, 3), np.int64), codebooks, {
            "items": len(existing), "new_items": 0, "existing_items": len(existing)})  # fmt: skip
    residuals = vectors.copy()
    norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    if codebooks is not None:
        check_capacity(len(vectors) + len(pinned), codebooks)
    codes, squared, codebooks, trained = _encode(residuals, settings, progress, codebooks, seconds)
    del residuals
    with progress.step(f"Resolving collisions among {len(codes) + len(pinned)} triples"):
        start = time.perf_counter()
        stats = resolve_collisions(codes, vectors, squared[-1], codebooks, pinned)
        _update_moved(vectors, codes, squared, codebooks, np.array(stats.moved_rows, dtype=np.int64))
        seconds["collisions"] = time.perf_counter() - start
    report = {
        "items": len(codes) + len(pinned),
        "new_items": len(codes),
        "existing_items": len(pinned),
        "dimension": embeddings.dimension,
        "codebook_sizes": list(settings.codebook_sizes),
        "centroids_per_level": list(codebooks.used_sizes),
        "training": trained,
        "collisions": stats.as_dict(),
        "quantisation_error": _errors(norms, squared),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    return _result(existing, embeddings.item_ids[new], codes, codebooks, report)


def _check_sizes(sizes: tuple[int, ...]) -> None:
    if len(sizes) != LEVELS or any(int(s) < 1 for s in sizes):
        raise InputFileError(f"--codebook-sizes must be three positive integers, got {tuple(sizes)}")


def _encode(
    residuals: np.ndarray,
    settings: SemanticIdSettings,
    progress: StepProgress,
    codebooks: Codebooks | None,
    seconds: dict[str, float],
) -> tuple[np.ndarray, list[np.ndarray], Codebooks, dict]:
    """Codes (n, 3), each level's squared residual norms, the codebooks (trained unless given), training facts."""
    n = len(residuals)
    rng = np.random.default_rng(settings.kmeans.seed)
    codes = np.empty((n, LEVELS), dtype=np.int64)
    squared, levels, train_points = [], [], []
    for level in range(LEVELS):
        k = min(settings.codebook_sizes[level], n) if codebooks is None else codebooks.used_sizes[level]
        points = settings.kmeans.train_points(n, k) if codebooks is None else 0
        what = f"k-means K={k} on {points} of {n} residuals" if points else f"saved codebook K={k}"
        with progress.step(f"Level {level + 1}/{LEVELS}: {what}, assigning {n} items"):
            start = time.perf_counter()
            if codebooks is None:
                sample = residuals[np.sort(rng.choice(n, size=points, replace=False))]
                show_iteration, show_cell = _printers(progress, level)
                trained_level = train_level(sample, k, level, settings.kmeans, show_iteration, show_cell)
            else:
                trained_level = codebooks.levels[level]
            codes[:, level], level_squared = assign_level(residuals, trained_level, settings.kmeans.chunk_size)
            seconds[f"level{level + 1}"] = time.perf_counter() - start
        squared.append(level_squared)
        levels.append(trained_level)
        train_points.append(points)
    trained = {"seed": settings.kmeans.seed, "iterations": settings.kmeans.iterations, "train_points": train_points}
    if codebooks is not None:
        trained = {"saved_codebooks": True}
    return codes, squared, codebooks or Codebooks(tuple(levels), tuple(settings.codebook_sizes)), trained


def _printers(progress: StepProgress, level: int):  # noqa: ANN202 - (IterationCallback, CellCallback)
    """Progress lines of a level's k-means: iterations (coarse, for a two-level level) and fine cells trained;
    the first and last of each, and others at most every `ITERATION_LINE_SECONDS`."""
    last = [0.0]

    def due(first_or_last: bool) -> bool:
        now = time.perf_counter()
        if not progress.enabled or not (first_or_last or now - last[0] >= ITERATION_LINE_SECONDS):
            return False
        last[0] = now
        return True

    def iteration(_: int, done: int, total: int, mean_squared: float) -> None:
        if due(done in (1, total)):
            print(f"      level {level + 1} k-means iteration {done}/{total}: mean squared distance "
                  f"{mean_squared:.5g}", file=progress.stream, flush=True)  # fmt: skip

    def cell(done: int, total: int) -> None:
        if due(done in (1, total)):
            print(f"      level {level + 1} fine k-means: cell {done}/{total}", file=progress.stream, flush=True)

    return iteration, cell


def _update_moved(
    vectors: np.ndarray, codes: np.ndarray, squared: list[np.ndarray], codebooks: Codebooks, moved: np.ndarray
) -> None:
    """Recompute the per-level squared residuals of the rows collision resolution moved."""
    if moved.size == 0:
        return
    residual = vectors[moved].copy()
    for level, centroids in enumerate(codebooks.centroids):
        residual -= centroids[codes[moved, level]]
        squared[level][moved] = np.einsum("ij,ij->i", residual, residual)


def _errors(norms: np.ndarray, squared: list[np.ndarray]) -> list[dict]:
    """Mean squared residual after each level, absolute and relative to the mean squared vector norm."""
    mean_norm = float(norms.mean())
    rows = []
    for level, values in enumerate(squared, start=1):
        mean = float(values.astype(np.float64).mean())
        rows.append({"level": level, "mean_squared_residual": mean,
                     "relative": mean / mean_norm if mean_norm > 0 else 0.0})  # fmt: skip
    return rows


def _result(
    existing: Catalog | None, new_ids: np.ndarray, codes: np.ndarray, codebooks: Codebooks, report: dict
) -> SemanticIds:
    if existing is not None:
        new_ids, codes = np.concatenate([existing.item_ids, new_ids]), np.concatenate([existing.codes, codes])
    report["codes_used"] = codes_used(codes)
    return SemanticIds(new_ids, codes, codebooks, report)


def codes_used(codes: np.ndarray) -> dict:
    """Distinct codes per level and prefix counts of a code table (n, 3)."""
    prefixes, per_prefix = np.unique(codes[:, 0] * (int(codes[:, 1].max()) + 1) + codes[:, 1], return_counts=True)
    return {
        "l1": int(np.unique(codes[:, 0]).size),
        "l2": int(np.unique(codes[:, 1]).size),
        "l3": int(np.unique(codes[:, 2]).size),
        "l1_l2_prefixes": int(prefixes.size),
        "most_items_per_prefix": int(per_prefix.max()),
    }
