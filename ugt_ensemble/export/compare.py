"""Compare two ranked outputs (codes or item ids with scores), tolerating only genuine ties."""

from __future__ import annotations

import numpy as np


def ranked_mismatches(
    ref_keys: np.ndarray,
    ref_scores: np.ndarray,
    got_keys: np.ndarray,
    got_scores: np.ndarray,
    atol: float,
    max_report: int = 5,
) -> list[str]:
    """Describe where `got` differs from `ref`; an empty list means they agree.

    keys (n, R) or (n, R, 3) and scores (n, R), best first. Scores must agree within `atol`
    (-inf only where -inf). Keys must be identical, except inside a run of entries whose reference
    scores lie within `atol` of each other: there only the set of keys must agree, and a run that
    reaches the end of the list may differ (the cut-off between tied items is arbitrary).
    """
    ref_keys, got_keys = _as_rows(ref_keys), _as_rows(got_keys)
    if ref_keys.shape != got_keys.shape or ref_scores.shape != got_scores.shape:
        return [
            f"shapes differ: keys {ref_keys.shape} vs {got_keys.shape}, scores {ref_scores.shape} vs {got_scores.shape}"
        ]
    problems = _score_mismatches(ref_scores, got_scores, atol)
    for row in range(len(ref_keys)):
        problem = _row_key_mismatch(ref_keys[row], ref_scores[row], got_keys[row], atol)
        if problem:
            problems.append(f"row {row}: {problem}")
    return problems[:max_report] + (
        [f"... and {len(problems) - max_report} more"] if len(problems) > max_report else []
    )


def _as_rows(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys)
    if keys.ndim != 3:
        return keys
    rows = np.empty(keys.shape[:2], dtype=object)  # (n, R, 3) triples -> one comparable tuple per entry
    for index in np.ndindex(rows.shape):
        rows[index] = tuple(keys[index].tolist())
    return rows


def _score_mismatches(ref: np.ndarray, got: np.ndarray, atol: float) -> list[str]:
    ref_inf, got_inf = np.isneginf(ref), np.isneginf(got)
    if np.any(ref_inf != got_inf):
        rows = np.unique(np.nonzero(ref_inf != got_inf)[0])
        return [f"padding (-inf scores) differs in rows {rows[:10].tolist()}"]
    with np.errstate(invalid="ignore"):  # -inf - -inf at padding, masked out
        diff = np.abs(np.where(ref_inf, 0.0, ref - got))
    if not np.all(diff <= atol):  # also catches NaN
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape)
        return [f"scores differ by up to {diff[worst]:.3g} (> atol {atol:g}) at row {worst[0]}, rank {worst[1]}"]
    return []


def _row_key_mismatch(ref: np.ndarray, ref_scores: np.ndarray, got: np.ndarray, atol: float) -> str | None:
    differing = np.flatnonzero([a != b for a, b in zip(ref.tolist(), got.tolist())])
    for rank in differing:
        if not np.isfinite(ref_scores[rank]):
            return f"rank {rank}: expected padding {ref[rank]}, got {got[rank]}"
        tied = np.flatnonzero(np.abs(ref_scores - ref_scores[rank]) <= atol)
        if tied.max() == len(ref) - 1:
            continue  # a tie at the cut-off
        if set(ref[tied].tolist()) != set(got[tied].tolist()):
            return f"rank {rank}: expected {ref[rank]}, got {got[rank]} (score {ref_scores[rank]:.6g}, no tie)"
    return None
