"""A Triton Python-backend step that computes nothing: it answers every request with constant outputs.

`noop_repos` copies this file as `model.py` into a model's version folder beside `constants.npz` (output name ->
one row, without the batch dimension). Each request gets its rows' worth of those rows; its inputs are read
(`as_numpy`) and not used. It stands in for the model step (the no-op repository: the first catalog items'
codes and descending scores, so postprocess does its full work) and for every step of the two-hop floor (what
the real steps emit for one history), so that a benchmark measures the Python-backend hops alone. It imports
nothing but numpy and the backend's utilities: it runs in a stub, not beside the product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

CONSTANTS_FILE = "constants.npz"


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        folder = Path(args["model_repository"]) / args["model_version"]
        with np.load(folder / CONSTANTS_FILE) as data:
            self.rows = {name: np.ascontiguousarray(data[name]) for name in data.files}

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._answer(request))
            except Exception as exc:  # noqa: BLE001 - nothing may escape execute()
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"constant step: {exc}")))
        return responses

    def _answer(self, request) -> object:  # noqa: ANN001
        arrays = [tensor.as_numpy() for tensor in request.inputs()]
        count = len(arrays[0]) if arrays else 1
        outputs = [pb_utils.Tensor(name, np.repeat(row[None], count, axis=0)) for name, row in self.rows.items()]
        return pb_utils.InferenceResponse(output_tensors=outputs)
