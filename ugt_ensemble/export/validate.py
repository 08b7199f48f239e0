"""Check an exported model step against the model it came from (fail loudly, never warn).

Both run on packed histories of the real catalog at each validation shape; codes must be identical up
to ties within `atol`, and scores within `atol`. Any other difference raises `ExportError` with one line
per failing shape.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ugt_ensemble.errors import ExportError, MissingDependencyError
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.contract import Runner, check_outputs
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES
from ugt_ensemble.runtime.rules import default_rules

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


def onnx_runner(onnx_path: str | Path, threads: int = 0, data: ConstraintData | None = None) -> Runner:
    """ONNX Runtime (CPU) on `onnx_path`: feed -> [recommendations, scores].

    A model that honours the rules also takes `data`'s constraint tables; a feed without rule tensors gets
    the no-rule ones (so every check that feeds encoder tensors runs it as it is)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("running the ONNX export needs onnxruntime (pip install onnxruntime)") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for any bad model
        raise ExportError(f"ONNX model {onnx_path}: ONNX Runtime cannot load it ({_first_line(exc)})") from None

    declared = {i.name for i in session.get_inputs()}
    takes_rules = RULE_NAMES[0] in declared
    if takes_rules and data is None:
        raise ExportError(f"ONNX model {onnx_path} takes the rule and constraint-table inputs: run it with the data")
    # a baked model (export.bake) holds its tables and takes the rule inputs only
    tables = {k: v for k, v in data.tables().items() if k in declared} if takes_rules and data is not None else {}

    def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        if takes_rules and RULE_NAMES[0] not in feed:
            feed = {**feed, **default_rules(data, len(feed[ENCODER_INPUTS[0]]))}
        try:
            return session.run(list(MODEL_OUTPUTS), {**feed, **tables})
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors, for any input
            raise ExportError(f"ONNX model {onnx_path}: ONNX Runtime fails to run it ({_first_line(exc)})") from None

    return run


def catalog_data_for(onnx_path: str | Path, index: CatalogIndex) -> ConstraintData | None:
    """The constraint data of `index` for the model in `onnx_path` (no item sets; tables padded to the fan-out caps
    in its metadata), or None when the model does not take the constraint tables."""
    from ugt_ensemble.export.onnx_contract import read_fanout_caps

    caps = read_fanout_caps(onnx_path)
    return ConstraintData.build(index, None, caps) if caps is not None else None


def _first_line(exc: BaseException) -> str:
    """`exc` in one line: ONNX Runtime's messages run over many."""
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def validate_runner(
    reference: Runner,
    candidate: Runner,
    label: str,
    index: CatalogIndex,
    shapes: Sequence[tuple[int, int]],
    atol: float,
    num_recommendations: int,
    seed: int = 0,
) -> list[ShapeCheck]:
    """Compare `candidate` with `reference` on each shape; `ExportError` on any mismatch."""
    rng = np.random.default_rng(seed)
    checks = [_check_shape(reference, candidate, label, index, b, t, atol, num_recommendations, rng) for b, t in shapes]
    failed = [c for c in checks if not c.ok]
    if failed:
        lines = [f"  (batch {c.batch}, seq {c.length}): {'; '.join(c.problems)}" for c in failed]
        raise ExportError(
            f"{label} differs from the PyTorch model on {len(failed)} of {len(checks)} shapes "
            f"(score atol {atol:g}):\n" + "\n".join(lines)
        )
    return checks


def _check_shape(reference, candidate, label, index, batch, length, atol, k, rng) -> ShapeCheck:  # noqa: ANN001
    feed = random_encoder_batch(index, batch, length, rng)
    start = time.perf_counter()
    ref_codes, ref_scores = reference(feed)
    got = candidate(feed)
    check_outputs(got, batch, k, label)
    got_codes, got_scores = got
    finite = np.isfinite(ref_scores) & np.isfinite(got_scores)
    diff = float(np.abs(ref_scores - got_scores)[finite].max(initial=0.0))
    problems = tuple(ranked_mismatches(ref_codes, ref_scores, got_codes, got_scores, atol))
    check = ShapeCheck(batch, length, diff, problems, time.perf_counter() - start)
    LOGGER.info(
        "[%s] batch %d, seq %d: codes %s, max |score diff| %.2g",
        "✓" if check.ok else "x",
        batch,
        length,
        "identical" if check.ok else "DIFFER",
        diff,
    )
    return check


def validate_onnx(model, onnx_path: str | Path, index: CatalogIndex, config) -> list[ShapeCheck]:  # noqa: ANN001
    """`validate_runner` of ONNX Runtime on `onnx_path` against the PyTorch `model`, with `config`'s
    (an ExportConfig) validation shapes, tolerance and K."""
    from ugt_ensemble.model.contract import torch_runner

    data = ConstraintData.build(index, None, model.fanout_caps) if hasattr(model, "fanout_caps") else None
    return validate_runner(
        torch_runner(model, type(model).__name__),
        onnx_runner(onnx_path, data=data),
        str(onnx_path),
        index,
        config.validation_shapes,
        config.score_atol,
        config.num_recommendations,
    )
