"""Glue between Triton's Python backend and the numpy runtime: the one module here that imports
`triton_python_backend_utils`, which only the server provides (nothing outside a model.py imports it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from .batching import Outcome
from .errors import RequestError


def model_config(args: dict) -> dict[str, Any]:
    """The model's config (Triton's ModelConfig as JSON), from `initialize(args)`."""
    return json.loads(args["model_config"])


def version_dir(args: dict) -> Path:
    """The directory of the model version being loaded (where its data files live)."""
    return Path(args["model_repository"]) / str(args["model_version"])


def input_arrays(request: "pb_utils.InferenceRequest") -> dict[str, np.ndarray]:
    """Every input a request sent, by name, as numpy (rows first), in one pass over `request.inputs()`
    (`pb_utils.get_input_tensor_by_name` scans them again for each name)."""
    return {tensor.name(): tensor.as_numpy() for tensor in request.inputs()}


def required(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """`arrays[name]` of `input_arrays`, or a `RequestError` naming the missing input."""
    array = arrays.get(name)
    if array is None:
        raise RequestError(f"missing input {name}")
    return array


def input_array(request: "pb_utils.InferenceRequest", name: str) -> np.ndarray:
    """An input of a request as numpy, (rows, ...) with the batch dimension first."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise RequestError(f"missing input {name}")
    return tensor.as_numpy()


def triton_error(message: str, code: str) -> "pb_utils.TritonError":
    """A TritonError with `code` (a `TritonError` attribute name such as INVALID_ARG)."""
    return pb_utils.TritonError(message, getattr(pb_utils.TritonError, code))


def to_responses(outcomes: list[Outcome]) -> list["pb_utils.InferenceResponse"]:
    """One InferenceResponse per outcome: its tensors, or its error with its code."""
    responses = []
    for outcome in outcomes:
        if outcome.error is not None:
            responses.append(pb_utils.InferenceResponse(error=triton_error(outcome.error, outcome.code)))
        else:
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(a)) for name, a in outcome.outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
    return responses


#: Triton metric (on /metrics) of the requests a step answered with an error.
FAILURE_METRIC = "ugt_request_failure"


class FailureCounter:
    """Counts the requests a model answers with an error, per Triton error code, as the counter
    `ugt_request_failure{model, version, code}` on Triton's /metrics.

    Triton 2.51's Python backend reports every request of an `execute()` that returned as a success in
    the model's statistics, even when its response carries an error: only a whole failed `execute()`
    counts as failures, and that turns every request's error into INTERNAL. This counter is the
    per-request truth beside those statistics.
    """

    def __init__(self, args: dict) -> None:
        self._family = pb_utils.MetricFamily(
            name=FAILURE_METRIC,
            description="Requests answered with an error, by Triton error code (ugt-ensemble)",
            kind=pb_utils.MetricFamily.COUNTER,
        )
        self._labels = {"model": str(args["model_name"]), "version": str(args["model_version"])}
        self._metrics: dict[str, Any] = {}

    def count(self, outcomes: list[Outcome]) -> None:
        """Add the failed outcomes of one execute()."""
        for outcome in outcomes:
            if outcome.error is not None:
                metric = self._metrics.get(outcome.code)
                if metric is None:
                    metric = self._family.Metric(labels={**self._labels, "code": outcome.code})
                    self._metrics[outcome.code] = metric
                metric.increment(1)
