"""Check an exported ONNX model against the PyTorch model it came from (fail loudly, never warn)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError, MissingDependencyError
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.ugt import UGT
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShapeCheck:
    """The outcome of one (batch, sequence) shape."""

    batch: int
    length: int
    max_score_diff: float
    problems: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


Runner = Callable[[dict[str, np.ndarray]], Sequence[np.ndarray]]


def validate_onnx(
    model: UGT, onnx_path: str | Path, index: CatalogIndex, config: ExportConfig, seed: int = 0
) -> list[ShapeCheck]:
    """Run PyTorch and ONNX Runtime on random histories of each `config.validation_shapes`.

    Codes must be identical (up to ties within `config.score_atol`) and scores within
    `config.score_atol`; otherwise raises `ExportError` with one line per failing shape.
    """
    session = _session(onnx_path)
    return validate_runner(
        model,
        lambda feed: session.run(None, feed),
        str(onnx_path),
        index,
        config.validation_shapes,
        config.score_atol,
        seed,
    )


def validate_runner(
    model: UGT,
    run: Runner,
    label: str,
    index: CatalogIndex,
    shapes: Sequence[tuple[int, int]],
    atol: float,
    seed: int = 0,
) -> list[ShapeCheck]:
    """Compare `run(feed) -> (codes, scores)` with PyTorch on each shape; `ExportError` on any mismatch."""
    rng = np.random.default_rng(seed)
    checks = [_check_shape(model, run, index, b, t, atol, rng) for b, t in shapes]
    failed = [c for c in checks if not c.ok]
    if failed:
        lines = [f"  (batch {c.batch}, seq {c.length}): {'; '.join(c.problems)}" for c in failed]
        raise ExportError(
            f"{label} differs from the PyTorch model on {len(failed)} of {len(checks)} shapes "
            f"(score atol {atol:g}):\n" + "\n".join(lines)
        )
    return checks


def _session(onnx_path: str | Path):  # noqa: ANN202 - onnxruntime.InferenceSession
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("validating the ONNX export needs onnxruntime (pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def _check_shape(model, run: Runner, index, batch: int, length: int, atol: float, rng) -> ShapeCheck:  # noqa: ANN001
    feed = random_encoder_batch(index, batch, length, rng)
    start = time.perf_counter()
    with torch.no_grad():
        ref_codes, ref_scores = (t.numpy() for t in model(*(torch.from_numpy(feed[n]) for n in ENCODER_INPUTS)))
    got_codes, got_scores = run(feed)
    finite = np.isfinite(ref_scores) & np.isfinite(got_scores)
    diff = float(np.abs(ref_scores - got_scores)[finite].max(initial=0.0))
    problems = tuple(ranked_mismatches(ref_codes, ref_scores, got_codes, got_scores, atol))
    check = ShapeCheck(batch, length, diff, problems, time.perf_counter() - start)
    mark = "✓" if check.ok else "x"
    LOGGER.info(
        "[%s] batch %d, seq %d: codes %s, max |score diff| %.2g",
        mark,
        batch,
        length,
        "identical" if check.ok else "DIFFER",
        diff,
    )
    return check
