"""The tensors of each emitted model and the ensemble's wiring, derived from the contract and the build."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.config import BuildConfig
from ugt_ensemble.runtime import contract as c
from ugt_ensemble.runtime.tensor_bundle import BUNDLE


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output (Triton's ModelInput / ModelOutput)."""

    name: str
    data_type: str
    dims: tuple[int, ...]
    allow_ragged_batch: bool = False
    optional: bool = False


@dataclass(frozen=True)
class EnsembleStep:
    """One `ensemble_scheduling.step`: the model and version, and (model tensor, ensemble tensor) pairs."""

    model_name: str
    input_map: tuple[tuple[str, str], ...]
    output_map: tuple[tuple[str, str], ...]
    model_version: int = -1


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


def step_batching(config: BuildConfig, step: str) -> Batching:
    """The batching of `step` ("preprocess", "model" or "postprocess").

    Preprocess takes one request per execute() (unless `preprocess_batch_requests`), and the model
    step's queue delay and preferred sizes are `TritonConfig.max_queue_delay_us` / `preferred_batch_sizes`.
    """
    t = config.triton
    queue = {"preprocess": t.preprocess, "model": t.model_step, "postprocess": t.postprocess}[step].queue
    one_per_execute = step == "preprocess" and not t.preprocess.batch_requests
    model = step == "model"
    return Batching(
        enabled=t.enable_dynamic_batching,
        max_queue_delay_us=t.max_queue_delay_us if model else 0,
        preferred_batch_sizes=(1,) if one_per_execute else (config.preferred_batch_sizes if model else ()),
        max_queue_size=queue.max_queue_size,
        queue_timeout_us=queue.queue_timeout_us,
    )


_TRITON_TYPES = {"int64": "TYPE_INT64", "float32": "TYPE_FP32", "bool": "TYPE_BOOL"}

HISTORY_INPUT = TensorSpec(c.HISTORY, "TYPE_STRING", (1,))


def recommendation_outputs(k: int) -> tuple[TensorSpec, ...]:
    """The ensemble's (and postprocess's) outputs for K recommendations."""
    return (
        TensorSpec(c.ITEM_IDS, "TYPE_INT64", (k,)),
        TensorSpec(c.SCORES, "TYPE_FP32", (k,)),
        TensorSpec(c.SEMANTIC_IDS, "TYPE_INT64", (k, c.NUM_LEVELS)),
    )


def model_outputs(k: int) -> tuple[TensorSpec, ...]:
    """The model step's outputs for K recommendations (the contract's shapes without the batch axis)."""
    return tuple(TensorSpec(t.name, _TRITON_TYPES[t.dtype], t.dims(K=k)[1:]) for t in c.STEP_OUTPUTS)


def encoder_tensors(ragged: bool = False, optional: bool = False) -> tuple[TensorSpec, ...]:
    """The six encoder tensors, each of per-request shape [-1]."""
    return tuple(TensorSpec(t.name, _TRITON_TYPES[t.dtype], (-1,), ragged, optional) for t in c.STEP_INPUTS)


def rule_tensors(config: BuildConfig, ragged: bool = False, optional: bool = False) -> tuple[TensorSpec, ...]:
    """The four per-request rule tensors (`contract.RULE_INPUTS`) without the batch axis: the base set [1], the
    level-1 mask [V1], and the dead pairs and removed items [-1, 2] (their length varies by request)."""
    v1 = config.export.codebook_sizes[0]
    return tuple(
        TensorSpec(t.name, _TRITON_TYPES[t.dtype], t.dims(codes1=v1)[1:], ragged, optional) for t in c.RULE_INPUTS
    )


def bundle_tensor(ragged: bool = False, optional: bool = False) -> TensorSpec:
    """The one uint8 tensor that carries the encoder (and rule) tensors from preprocess to a Python-backend model
    step (`runtime.tensor_bundle`: one tensor hop instead of ten)."""
    return TensorSpec(BUNDLE, "TYPE_UINT8", (-1,), ragged, optional)


def step_tensors(config: BuildConfig, ragged: bool = False, optional: bool = False) -> tuple[TensorSpec, ...]:
    """The six encoder tensors, and the four rule tensors when the model honours the rules in its search."""
    encoder = encoder_tensors(ragged, optional)
    if not config.triton.model_step.rules_in_search:
        return encoder
    return encoder + rule_tensors(config, ragged, optional=optional)


def preprocess_outputs(config: BuildConfig) -> tuple[TensorSpec, ...]:
    """What preprocess sends the model step: one bundle to a Python-backend step, else the encoder tensors and,
    when the model honours the rules in its search, the four rule tensors (they go to the model step only)."""
    return (bundle_tensor(),) if config.triton.python_model_step else step_tensors(config)


def model_step_inputs(config: BuildConfig, ragged: bool = False) -> tuple[TensorSpec, ...]:
    """A native step's inputs are the graph's: the encoder tensors and, when the model honours the rules in its
    search, the rule tensors. A Python-backend step takes the bundle (from preprocess) or those tensors (from a
    direct caller, e.g. perf_analyzer: rule tensors all or none, none meaning no rule), so each is optional there
    and the step names what is missing."""
    if not config.triton.python_model_step:
        return step_tensors(config, ragged)
    return (bundle_tensor(ragged, optional=True),) + step_tensors(config, ragged, optional=True)


def postprocess_inputs(config: BuildConfig) -> tuple[TensorSpec, ...]:
    """Model outputs, and the optional rule tensors a caller of postprocess alone may send to have each answer
    checked against them (the ensemble sends none: its rules are the model step's, see `ensemble_steps`)."""
    return model_outputs(config.export.num_recommendations) + rule_tensors(config, ragged=True, optional=True)


def ensemble_steps(config: BuildConfig, versions: dict[str, int] | None = None) -> tuple[EnsembleStep, ...]:
    """preprocess -> model step -> postprocess, with ensemble tensors named like model tensors. What preprocess
    sends goes to the model step and nowhere else (a request pays for each tensor hop).

    `versions` pins a step's version (model name -> version); the others use the latest (-1).
    """
    t, k, pins = config.triton, config.export.num_recommendations, versions or {}
    same = lambda specs: tuple((s.name, s.name) for s in specs)  # noqa: E731
    steps = (
        (t.preprocess_name, same((HISTORY_INPUT,)), same(preprocess_outputs(config))),
        (t.step_name, same(preprocess_outputs(config)), same(model_outputs(k))),
        (t.postprocess_name, same(model_outputs(k)), same(recommendation_outputs(k))),
    )
    return tuple(EnsembleStep(name, inputs, outputs, pins.get(name, -1)) for name, inputs, outputs in steps)
