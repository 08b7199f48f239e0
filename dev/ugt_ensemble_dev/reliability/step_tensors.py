"""Tensors sent straight to a composing model (the model step, postprocess), bypassing the ensemble, and
malformed rule tensors a careless or hostile client may send them.

`malformed_rule_tensors` takes a request's good rule tensors (what preprocess made of a document) and the
served constraint data's bounds, and returns each defect with the substring its error must hold: a wrong
dtype, shape or batch size (refused by Triton against the config), a list of no entry, and a set index,
parent or slot out of range (refused by the step's own check, `model_step.check_rule_inputs`), and a row with more
entries than the catalog has items or prefixes (`rule_lists.RuleListLimits`).
`odd_rule_tensors` are in range but inconsistent (closed level-1 codes, removals in the padding pairs):
they must be answered, never fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import RULE_DEAD_PAIRS, RULE_L1_VALID, RULE_REMOVED_ITEMS, RULE_SET

Tensors = dict[str, np.ndarray]
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class StepReply:
    """A composing model's answer: "OK" with outputs, or the gRPC status name and message."""

    status: str
    message: str = ""
    outputs: Tensors | None = None


def infer_tensors(
    client: grpcclient.InferenceServerClient, model: str, tensors: Mapping[str, np.ndarray], timeout_s: float = 60.0
) -> StepReply:
    """Send `tensors` (any dtype and shape; the Triton datatype follows the numpy dtype) to `model`."""
    inputs = []
    for name, value in tensors.items():
        tensor = grpcclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        tensor.set_data_from_numpy(np.ascontiguousarray(value))
        inputs.append(tensor)
    try:
        result = client.infer(model, inputs, client_timeout=timeout_s)
    except InferenceServerException as exc:
        return StepReply(str(exc.status()).removeprefix("StatusCode."), exc.message() or "")
    return StepReply("OK", outputs={o.name: result.as_numpy(o.name) for o in result.get_response().outputs})


def malformed_rule_tensors(rules: Mapping[str, np.ndarray], data: ConstraintData) -> dict[str, tuple[Tensors, str]]:
    """Each defect's name -> (the rule tensors with that one defect, a substring of the error it earns)."""
    rows = len(rules[RULE_SET])
    (c2, c3), v1, pairs = data.fanout_caps, data.index.codebook_sizes[0], data.num_pairs + data.fanout_caps[0]
    entry = lambda parent, slot: np.array([[[parent, slot]]] * rows, dtype=np.int64)  # noqa: E731
    outside = "has values outside"
    cases = {
        "set past the sets": ({RULE_SET: np.full((rows, 1), data.num_sets)}, f"{RULE_SET} {outside}"),
        "negative set": ({RULE_SET: np.full((rows, 1), -1)}, f"{RULE_SET} {outside}"),
        "set of INT32": ({RULE_SET: rules[RULE_SET].astype(np.int32)}, "data-type is 'INT32'"),
        "two sets in a row": ({RULE_SET: np.zeros((rows, 2), np.int64)}, f"unexpected shape for input '{RULE_SET}'"),
        "set for another batch": ({RULE_SET: np.zeros((rows + 1, 1), np.int64)}, "batch size does not match"),
        "level-1 mask of INT64": ({RULE_L1_VALID: rules[RULE_L1_VALID].astype(np.int64)}, "data-type is 'INT64'"),
        "level-1 mask too short": (
            {RULE_L1_VALID: rules[RULE_L1_VALID][:, : v1 - 1]},
            f"unexpected shape for input '{RULE_L1_VALID}'",
        ),
        "no dead-pair entry": ({RULE_DEAD_PAIRS: np.zeros((rows, 0, 2), np.int64)}, f"{RULE_DEAD_PAIRS} must be"),
        "dead pairs of three": (
            {RULE_DEAD_PAIRS: np.zeros((rows, 1, 3), np.int64)},
            f"unexpected shape for input '{RULE_DEAD_PAIRS}'",
        ),
        "dead pair past level 1": ({RULE_DEAD_PAIRS: entry(v1, 0)}, f"{RULE_DEAD_PAIRS}[..., 0] {outside}"),
        "dead pair below padding": ({RULE_DEAD_PAIRS: entry(-2, 0)}, f"{RULE_DEAD_PAIRS}[..., 0] {outside}"),
        "dead pair slot past the cap": ({RULE_DEAD_PAIRS: entry(0, c2)}, f"{RULE_DEAD_PAIRS}[..., 1] {outside}"),
        "removed item past the pairs": (
            {RULE_REMOVED_ITEMS: entry(pairs, 0)},
            f"{RULE_REMOVED_ITEMS}[..., 0] {outside}",
        ),
        "removed item at int64 max": (
            {RULE_REMOVED_ITEMS: entry(_INT64_MAX, _INT64_MAX)},
            f"{RULE_REMOVED_ITEMS}[..., 0] {outside}",
        ),
        "removed item slot past the cap": (
            {RULE_REMOVED_ITEMS: entry(0, c3)},
            f"{RULE_REMOVED_ITEMS}[..., 1] {outside}",
        ),
        "negative removed slot": ({RULE_REMOVED_ITEMS: entry(0, -1)}, f"{RULE_REMOVED_ITEMS}[..., 1] {outside}"),
        "removed items of FP32": (
            {RULE_REMOVED_ITEMS: rules[RULE_REMOVED_ITEMS].astype(np.float32)},
            "data-type is 'FP32'",
        ),
        "more removed items than the catalog holds": (
            {RULE_REMOVED_ITEMS: np.zeros((rows, data.num_items + 1, 2), np.int64)},
            f"{RULE_REMOVED_ITEMS}: row 0 holds {data.num_items + 1} entries",
        ),
        "more dead pairs than the catalog has prefixes": (
            {RULE_DEAD_PAIRS: np.zeros((rows, data.num_pairs + 1, 2), np.int64)},
            f"{RULE_DEAD_PAIRS}: row 0 holds {data.num_pairs + 1} entries",
        ),
    }
    return {name: ({**rules, **change}, hint) for name, (change, hint) in cases.items()}


def odd_rule_tensors(rules: Mapping[str, np.ndarray], data: ConstraintData) -> dict[str, Tensors]:
    """In-range rule tensors that no preprocess would send: each must still be answered."""
    rows = len(rules[RULE_SET])
    (c2, c3), pairs = data.fanout_caps, data.num_pairs
    padding_pairs = np.stack([np.arange(pairs, pairs + c2), np.arange(c2) % c3], axis=1)
    count = min(4096, data.num_items)  # a row removes distinct items: at most the catalog's
    many = np.stack([np.arange(count) % (pairs + c2), np.arange(count) % c3], axis=1)
    tail = np.concatenate([rules[RULE_REMOVED_ITEMS], np.tile([[[-1, 0]]], (rows, 100_000, 1))], axis=1)
    cases = {
        "every level-1 code closed": {RULE_L1_VALID: np.zeros_like(rules[RULE_L1_VALID])},
        "removals in the padding pairs": {RULE_REMOVED_ITEMS: np.repeat(padding_pairs[None], rows, axis=0)},
        f"{count} removals, repeated": {RULE_REMOVED_ITEMS: np.repeat(many[None], rows, axis=0)},
        "a padding tail of 100,000 entries": {RULE_REMOVED_ITEMS: tail},
        "every slot of pair 0 dead": {
            RULE_DEAD_PAIRS: np.repeat(np.stack([np.zeros(c2), np.arange(c2)], 1)[None], rows, 0).astype(np.int64)
        },
    }
    return {name: {**rules, **change} for name, change in cases.items()}
