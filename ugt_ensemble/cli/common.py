"""Shared CLI plumbing: logging, error reporting and printing results."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from typing import Sequence

from ugt_ensemble.client.results import Result

LOGGER = logging.getLogger("ugt_ensemble")


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: "8,16,32" -> (8, 16, 32)."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def configure_logging(verbosity: int) -> None:
    """INFO from ugt_ensemble by default (-q: warnings only, -v: debug everywhere)."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbosity < 1 else "%(levelname)s %(name)s: %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    logging.basicConfig(level=logging.DEBUG if verbosity > 0 else logging.WARNING)


def print_results(
    results: Sequence[Result], labels: Sequence[str], top: int, latencies_ms: Sequence[float] | None = None
) -> None:
    """Human-readable recommendations, `top` per history, five to a line."""
    for i, (result, label) in enumerate(zip(results, labels)):
        timing = f", {latencies_ms[i]:.1f} ms" if latencies_ms else ""
        if not result.ok:
            print(f"{label}: ERROR {result.error}{timing}")  # type: ignore[union-attr]
            continue
        items = result.items()  # type: ignore[union-attr]
        print(f"{label}: {len(items)} items{timing}")
        cells = [f"{rank:>2}. {item:>8} ({score:7.3f})" for rank, (item, score) in enumerate(items[:top], start=1)]
        for start in range(0, len(cells), 5):
            print("   " + "  ".join(cells[start : start + 5]))


def print_json_results(results: Sequence[Result]) -> None:
    """One JSON object per history (padding scores, -inf, are written as null)."""
    for i, result in enumerate(results):
        if not result.ok:
            print(json.dumps({"history": i, "error": result.error}))  # type: ignore[union-attr]
            continue
        scores = [None if math.isinf(s) else s for s in result.scores.tolist()]  # type: ignore[union-attr]
        print(
            json.dumps(
                {
                    "history": i,
                    "item_ids": result.item_ids.tolist(),  # type: ignore[union-attr]
                    "scores": scores,
                    "semantic_ids": result.semantic_ids.tolist(),  # type: ignore[union-attr]
                }
            )
        )
