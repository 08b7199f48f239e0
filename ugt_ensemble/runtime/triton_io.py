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
