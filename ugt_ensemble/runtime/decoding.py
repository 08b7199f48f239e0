"""Decode the model step's (n, K, 3) codes into catalog item ids, vectorised over the batch.

A slot is kept when its code triple is a catalog item, it is the best-scored slot of that item in
its row (a model that returns an item twice keeps one), and the request's rules allow it (`eligible`).
Kept items move to the front in score order; the rest is padding: item id -1, semantic ids -1, score
-inf (so SCORES stays non-increasing). Every answer is distinct eligible catalog items, whatever the
model returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .catalog_index import CatalogIndex
from .contract import ITEM_IDS, PAD_ITEM_ID, PAD_SCORE, SCORES, SEMANTIC_IDS


@dataclass
class Recommendations:
    """Decoded results of a batch: item_ids (n, R) int64, scores (n, R) float32, semantic_ids (n, R, 3)."""

    item_ids: np.ndarray
    scores: np.ndarray
    semantic_ids: np.ndarray

    def rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows [start, stop) as the ensemble's output tensors."""
        return {
            ITEM_IDS: self.item_ids[start:stop],
            SCORES: self.scores[start:stop],
            SEMANTIC_IDS: self.semantic_ids[start:stop],
        }


def decode_recommendations(
    codes: np.ndarray,
    scores: np.ndarray,
    index: CatalogIndex,
    eligible: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
) -> Recommendations:
    """Map codes (n, R, 3) and scores (n, R) to items, looking each code triple up once.

    `eligible`, when given, keeps only the slots it marks: (n, R) bool, or a function of the slots' code-order
    item positions (n, R; -1 for no catalog item) returning that mask (e.g. the request's rules:
    `ugt_runtime.rules.eligible_mask`). A model that honours the rules in its search needs none.
    """
    codes = np.asarray(codes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    positions = index.item_index_of(codes)
    keep = positions >= 0
    items = np.where(keep, index.items_by_code[positions], PAD_ITEM_ID)
    if eligible is not None:
        keep &= eligible(positions) if callable(eligible) else eligible
    keep &= ~_repeats(items, scores, keep)
    return _compact(items, scores, codes, keep)


def _repeats(items: np.ndarray, scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(n, K) bool: kept slots whose item the row already holds at a better (or equal, earlier) score."""
    masked = np.where(keep, items, -2 - np.arange(items.shape[1]))  # dropped slots never match anything
    ordered = np.sort(masked, axis=1)
    if not np.any(ordered[:, 1:] == ordered[:, :-1]):  # the common case: no item twice
        return np.zeros(items.shape, dtype=bool)
    order = np.lexsort((-scores, masked), axis=-1)  # by item, then best score first (stable)
    rows = np.arange(len(items))[:, None]
    by_item = masked[rows, order]
    repeated = np.zeros(items.shape, dtype=bool)
    repeated[rows, order[:, 1:]] = by_item[:, 1:] == by_item[:, :-1]
    return repeated


def _compact(items: np.ndarray, scores: np.ndarray, codes: np.ndarray, keep: np.ndarray) -> Recommendations:
    """Move kept slots to the front in score order (stable among equal scores) and pad the rest."""
    in_order = bool(np.all(scores[:, 1:] <= scores[:, :-1]))
    if keep.all() and in_order:  # the common case: nothing to move
        return Recommendations(item_ids=items, scores=scores, semantic_ids=codes)
    if in_order:
        order = np.argsort(~keep, axis=1, kind="stable")
    else:
        order = np.argsort(np.where(keep, -scores.astype(np.float64), np.inf), axis=1, kind="stable")
    rows = np.arange(len(items))[:, None]
    items, scores, codes, padding = items[rows, order], scores[rows, order], codes[rows, order], ~keep[rows, order]
    items[padding] = PAD_ITEM_ID
    scores[padding] = PAD_SCORE
    codes[padding] = PAD_ITEM_ID
    return Recommendations(item_ids=items, scores=scores, semantic_ids=codes)
