"""Model-step helpers for engines run inside a Python-backend model: input checks and batching.

Requests reach the model step with different history lengths (ragged batching). `run_by_length`
runs each distinct length as one engine call and splits the outputs back per request, so short
histories are never padded to the longest one in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .batching import row_bounds
from .contract import (
    CODEBOOK_SIZES,
    ENCODER_DTYPES,
    ENCODER_INPUTS,
    ENCODER_MASK,
    MODEL_OUTPUTS,
    NUM_TOKEN_TYPES,
    encoder_upper_bounds,
)
from .errors import RequestError

Tensors = dict[str, np.ndarray]


@dataclass(frozen=True)
class EncoderLimits:
    """Valid ranges of the encoder tensors (out-of-range ids would crash the engine's Gather)."""

    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    max_seq_length: int = 1024
    num_token_types: int = NUM_TOKEN_TYPES  # token type 0 is padding

    def ranges(self) -> dict[str, int]:
        """Exclusive upper bound of each int64 encoder tensor (lower bound 0)."""
        return encoder_upper_bounds(self.codebook_sizes, self.max_seq_length, self.num_token_types)


def check_encoder_inputs(tensors: Tensors, limits: EncoderLimits) -> None:
    """Raise `RequestError` unless all six tensors share one (rows, T) shape with in-range values."""
    shapes = {name: tensors[name].shape for name in ENCODER_INPUTS}
    first = shapes[ENCODER_INPUTS[0]]
    if len(first) != 2 or any(shape != first for shape in shapes.values()):
        raise RequestError(f"encoder inputs must share one [rows, length] shape, got {shapes}")
    if not 1 <= first[1] <= limits.max_seq_length:
        raise RequestError(f"history length {first[1]} is outside [1, {limits.max_seq_length}]")
    for name, upper in limits.ranges().items():
        values = tensors[name]
        if values.size and (values.min() < 0 or values.max() >= upper):
            raise RequestError(f"{name} has values outside [0, {upper}): min {values.min()}, max {values.max()}")
    if not np.all(np.isfinite(tensors[ENCODER_MASK])):
        raise RequestError(f"{ENCODER_MASK} has non-finite values")


def run_by_length(
    requests: list[Tensors], run: Callable[[Tensors], list[np.ndarray]], max_tokens: int | None = None
) -> list[Tensors]:
    """Run `run(feed)` once per distinct length (in slices of at most `max_tokens` rows x length, which
    bounds the engine's peak memory); return each request's outputs by name."""
    results: list[Tensors | None] = [None] * len(requests)
    lengths = [r[ENCODER_INPUTS[0]].shape[1] for r in requests]
    for length in sorted(set(lengths)):
        members = [i for i, n in enumerate(lengths) if n == length]
        feed = {name: _concat([requests[i][name] for i in members]) for name in ENCODER_INPUTS}
        outputs = _run_sliced(run, feed, max(1, (max_tokens or len(feed[ENCODER_INPUTS[0]]) * length) // length))
        bounds = row_bounds([requests[i][ENCODER_INPUTS[0]].shape[0] for i in members])
        for i, (start, stop) in zip(members, bounds):
            results[i] = {name: out[start:stop] for name, out in zip(MODEL_OUTPUTS, outputs)}
    return results  # type: ignore[return-value]


def _run_sliced(run: Callable[[Tensors], list[np.ndarray]], feed: Tensors, rows: int) -> list[np.ndarray]:
    total = len(feed[ENCODER_INPUTS[0]])
    if total <= rows:
        return run(feed)
    parts = [run({name: t[start : start + rows] for name, t in feed.items()}) for start in range(0, total, rows)]
    return [np.concatenate(outputs) for outputs in zip(*parts)]


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def warm_up(infer: Callable[[list[Tensors]], list[Tensors]], model_config: dict, length: int) -> None:
    """Run zero-data (empty) histories of `length` at batch 1 and at the loaded config's max_batch_size.

    Called from `initialize`, so the batch follows whatever max_batch_size the config carries (Model
    Analyzer's candidates change it), and Triton's statistics never count these runs. `length` 0: none.
    """
    if length < 1:
        return
    for rows in sorted({1, max(1, int(model_config.get("max_batch_size", 1)))}):
        infer([{name: np.zeros((rows, length), dtype=ENCODER_DTYPES[name]) for name in ENCODER_INPUTS}])
