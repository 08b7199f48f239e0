"""Decode the model step's (n, K, 3) codes into catalog item ids, vectorised over the batch.

A slot is kept when its code triple is a catalog item, it is the best-scored slot of that item in
its row (a model that returns an item twice keeps one), and (with `exclude_history`) the item is not
among the request's packed history. Kept items move to the front in score order; the rest is padding:
item id -1, semantic ids -1, score -inf (so SCORES stays non-increasing). Every answer is distinct
catalog items, whatever the model returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .catalog_index import CatalogIndex
from .contract import HISTORY_CODE_INPUTS, ITEM_IDS, PAD_ITEM_ID, PAD_SCORE, SCORES, SEMANTIC_IDS, code_keys


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


def packed_history(encoder_tensors: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The history a request was packed with, as `decode_recommendations` takes it to exclude it: the
    codes (n, T, 3) stacked from the three code tensors, and the mask (n, T)."""
    *code_names, mask_name = HISTORY_CODE_INPUTS
    return np.stack([encoder_tensors[name] for name in code_names], axis=-1), encoder_tensors[mask_name]


def decode_recommendations(
    codes: np.ndarray,
    scores: np.ndarray,
    index: CatalogIndex,
    history_codes: np.ndarray | None = None,
    history_mask: np.ndarray | None = None,
) -> Recommendations:
    """Map codes (n, R, 3) and scores (n, R) to items.

    history_codes (n, T, 3) with history_mask (n, T) (1.0 = real event), when given, removes
    items the user already has from that user's row.
    """
    codes = np.asarray(codes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    items = index.items_of(codes)
    keep = items != PAD_ITEM_ID
    if history_codes is not None:
        history_mask = np.asarray(history_mask) > 0
        keep &= ~_in_history(codes, np.asarray(history_codes), history_mask, index.codebook_sizes)
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


def _in_history(
    codes: np.ndarray, history_codes: np.ndarray, history_mask: np.ndarray, codebook_sizes: tuple
) -> np.ndarray:
    """Row-wise membership: (n, R) bool, True where codes[i, r] is among row i's history codes.

    Keys are `row * |code space| + code_key`, unique per (row, triple), so one `isin` does it all.
    """
    span = int(np.prod(codebook_sizes, dtype=np.int64))
    rows = np.arange(len(codes), dtype=np.int64)[:, None]
    item_keys = rows * span + code_keys(codes, codebook_sizes)
    history_keys = (rows * span + code_keys(history_codes, codebook_sizes))[history_mask]
    return np.isin(item_keys, history_keys)


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
