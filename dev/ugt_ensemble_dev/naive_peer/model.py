"""Triton Python backend `ugt_naive`: the naive peer that the benchmark compares the ensemble with.

The way most teams start: one model that, request by request, parses the JSON history, runs the
PyTorch model eagerly and decodes the codes, with no dynamic batching. It is a benchmark
baseline, not part of the product, and (unlike the ensemble's models) imports `ugt_ensemble` and
`ugt_ensemble_dev`, which must be installed in the server's Python. `build --naive-peer` copies it as model.py
(through the build hook in `hook.py`).
"""

from __future__ import annotations

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.model.checkpoint import load_checkpoint
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, HISTORY
from ugt_ensemble.runtime.decoding import decode_recommendations
from ugt_ensemble.runtime.errors import describe_error
from ugt_ensemble.runtime.history import parse_history
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories
from ugt_ensemble.runtime.triton_io import input_array, model_config, triton_error, version_dir
from ugt_ensemble_dev.naive_peer.parameters import NaivePeerParameters


class TritonPythonModel:
    """One request at a time: parse, pack to the exact length, run the model eagerly, decode."""

    def initialize(self, args: dict) -> None:
        folder = version_dir(args)
        params = NaivePeerParameters.from_model_config(model_config(args), f"{folder}/../config.pbtxt")
        self.index = CatalogIndex.load(folder / params.catalog_file)
        tables = PrefixTables.from_codes(self.index.codes, self.index.codebook_sizes)
        self.model = load_checkpoint(folder / params.checkpoint_file, tables)
        length = params.max_seq_length
        self.packing = PackingConfig(length, tuple(range(1, length + 1)))  # exact lengths, no buckets
        torch.set_num_threads(params.torch_threads)

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._recommend(request))
            except Exception as exc:  # noqa: BLE001 - one bad request must not fail the others
                message, code = describe_error(exc)
                responses.append(pb_utils.InferenceResponse(error=triton_error(message, code)))
        return responses

    def _recommend(self, request: pb_utils.InferenceRequest) -> pb_utils.InferenceResponse:
        history = parse_history(input_array(request, HISTORY).reshape(-1)[0])
        packed = pack_histories([history], self.index, self.packing)
        with torch.no_grad():
            codes, scores = self.model(*(torch.from_numpy(packed.tensors[name]) for name in ENCODER_INPUTS))
        decoded = decode_recommendations(codes.numpy(), scores.numpy(), self.index)
        tensors = [pb_utils.Tensor(name, np.ascontiguousarray(a)) for name, a in decoded.rows(0, 1).items()]
        return pb_utils.InferenceResponse(output_tensors=tensors)
