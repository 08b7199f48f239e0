"""The tensors of each emitted model and the ensemble's wiring, derived from the contract."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.config import TritonConfig
from ugt_ensemble.runtime import contract as c


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output (Triton's ModelInput / ModelOutput)."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    allow_ragged_batch: bool = False


@dataclass(frozen=True)
class EnsembleStep:
    """One `ensemble_scheduling.step`: (model tensor, ensemble tensor) pairs in and out."""

    model_name: str
    input_map: tuple[tuple[str, str], ...]
    output_map: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Batching:
    """A composing model's `dynamic_batching` block (none when `enabled` is False).

    `max_queue_size` and `queue_timeout_us` (0: no limit) become its `default_queue_policy`: a request
    that finds the queue full, or waits longer than the timeout, is rejected with UNAVAILABLE.
    """

    enabled: bool = True
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0
    queue_timeout_us: int = 0


def step_batching(triton: TritonConfig, step: str) -> Batching:
    """The batching of `step` ("preprocess", "model" or "postprocess")."""
    one_per_execute = step == "preprocess" and not triton.preprocess_batch_requests
    preferred = triton.preferred_batch_sizes if step == "model" else ()
    return Batching(
        max_queue_delay_us=0 if one_per_execute else triton.max_queue_delay_us,
        preferred_batch_sizes=(1,) if one_per_execute else tuple(preferred),
        max_queue_size=triton.max_queue_size,
        queue_timeout_us=triton.queue_timeout_us,
    )


_TRITON_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32"}

HISTORY_INPUT = TensorSpec(c.HISTORY, "TYPE_STRING", (1,))
RECOMMENDATION_OUTPUTS = (
    TensorSpec(c.ITEM_IDS, "TYPE_INT64", (c.NUM_RECOMMENDATIONS,)),
    TensorSpec(c.SCORES, "TYPE_FP32", (c.NUM_RECOMMENDATIONS,)),
    TensorSpec(c.SEMANTIC_IDS, "TYPE_INT64", (c.NUM_RECOMMENDATIONS, 3)),
)
MODEL_OUTPUTS = (
    TensorSpec(c.RECOMMENDATIONS, "TYPE_INT64", (c.NUM_RECOMMENDATIONS, 3)),
    TensorSpec(c.MODEL_SCORES, "TYPE_FP32", (c.NUM_RECOMMENDATIONS,)),
)


def encoder_tensors(ragged: bool = False) -> tuple[TensorSpec, ...]:
    """The six encoder tensors, each of per-request shape [-1]."""
    return tuple(
        TensorSpec(name, _TRITON_TYPES[c.ENCODER_DTYPES[name].__name__], (-1,), ragged) for name in c.ENCODER_INPUTS
    )


def postprocess_inputs(triton: TritonConfig) -> tuple[TensorSpec, ...]:
    """Model outputs, plus the packed history when recommendations exclude it."""
    history = tuple(t for t in encoder_tensors(ragged=True) if t.name in c.HISTORY_CODE_INPUTS)
    return MODEL_OUTPUTS + (history if triton.exclude_history else ())


def ensemble_steps(triton: TritonConfig) -> tuple[EnsembleStep, ...]:
    """preprocess -> model step -> postprocess, with ensemble tensors named like model tensors."""
    same = lambda specs: tuple((t.name, t.name) for t in specs)  # noqa: E731
    return (
        EnsembleStep(triton.preprocess_name, same((HISTORY_INPUT,)), same(encoder_tensors())),
        EnsembleStep(triton.model_name, same(encoder_tensors()), same(MODEL_OUTPUTS)),
        EnsembleStep(triton.postprocess_name, same(postprocess_inputs(triton)), same(RECOMMENDATION_OUTPUTS)),
    )
