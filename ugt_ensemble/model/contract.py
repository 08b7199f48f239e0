"""The model-step contract (`runtime.contract.STEP_INPUTS` / `STEP_OUTPUTS`), checked in PyTorch on a model
the package has never seen.

A model step takes the six encoder tensors that preprocess packs, each [batch, sequence]:
`encoder_l1_ids`, `encoder_l2_ids`, `encoder_l3_ids`, `encoder_positions`, `encoder_token_types`
(int64) and `encoder_mask` (float32; 1.0 for a real event, 0.0 for padding; padded positions hold
code 0, position 0, token type 0), and returns `(recommendations int64 [batch, K, 3], scores float32
[batch, K])`, best first; code -1 with score -inf marks an empty slot. Each check fails with one
message naming the tensor, its dtype or its shape.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import numpy as np
import torch

from ugt_ensemble.errors import StepContractError
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, STEP_OUTPUTS

Feed = dict[str, np.ndarray]
#: Runs a model step on one feed of encoder tensors; returns (recommendations, scores) as numpy.
Runner = Callable[[Feed], Sequence[np.ndarray]]


def check_forward_signature(model: torch.nn.Module, source: str) -> None:
    """StepContractError unless `model.forward` can take the six encoder tensors positionally."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return  # a forward without a signature (a compiled or wrapped module): the run check decides
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters if p.default is p.empty and p.kind is not p.VAR_KEYWORD]
    if len(positional) < len(ENCODER_INPUTS) or len(required) > len(ENCODER_INPUTS):
        names = [p.name for p in parameters]
        raise StepContractError(
            f"{source}: forward{tuple(names)} cannot take the six encoder tensors {list(ENCODER_INPUTS)}"
        )


def torch_runner(model: torch.nn.Module, source: str) -> Runner:
    """A runner for a PyTorch model step, checking that it returns two tensors."""

    def run(feed: Feed) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = model(*(torch.from_numpy(feed[name]) for name in ENCODER_INPUTS))
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise StepContractError(
                f"{source} returns {type(outputs).__name__}; the step contract wants a tuple "
                f"({', '.join(t.describe() for t in STEP_OUTPUTS)})"
            )
        for name, value in zip(MODEL_OUTPUTS, outputs):
            if not isinstance(value, torch.Tensor):
                raise StepContractError(f"{source}: output {name} is a {type(value).__name__}, not a tensor")
        return [value.detach().cpu().numpy() for value in outputs]

    return run


def check_outputs(outputs: Sequence[np.ndarray], batch: int, num_recommendations: int, source: str) -> None:
    """StepContractError unless outputs are (int64 [batch, K, 3], float32 [batch, K]) with K = num_recommendations."""
    if len(outputs) != 2:
        raise StepContractError(f"{source} returns {len(outputs)} outputs; the contract wants {list(MODEL_OUTPUTS)}")
    codes, scores = (np.asarray(o) for o in outputs)
    (codes_spec, scores_spec), k = STEP_OUTPUTS, num_recommendations
    want_codes, want_scores = codes_spec.dims(batch=batch, K=k), scores_spec.dims(batch=batch, K=k)
    if codes.dtype != codes_spec.dtype or codes.shape != want_codes:
        raise StepContractError(
            f"{source}: output {codes_spec.name} is {codes.dtype} {list(codes.shape)}; the contract wants "
            f"{codes_spec.dtype} {list(want_codes)} (batch, K = num_recommendations, {want_codes[2]} levels)"
            + _k_hint(codes, want_codes)
        )
    if scores.dtype != scores_spec.dtype or scores.shape != want_scores:
        raise StepContractError(
            f"{source}: output {scores_spec.name} is {scores.dtype} {list(scores.shape)}; "
            f"the contract wants {scores_spec.dtype} {list(want_scores)}" + _k_hint(scores, want_scores)
        )
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise StepContractError(f"{source}: output scores holds NaN or +inf; empty slots must score -inf")


def _k_hint(value: np.ndarray, want: tuple[int, ...]) -> str:
    """The flag to change when only K (the second axis) differs."""
    if value.ndim == len(want) and value.shape[0] == want[0] and value.shape[2:] == want[2:]:
        return (
            f"; the model returns K = {value.shape[1]}: build with --num-recommendations {value.shape[1]} "
            "(ExportConfig.num_recommendations), or change the model's K"
        )
    return ""
