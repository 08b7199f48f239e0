"""Triton Python backend model step: encoder tensors -> recommendations (50, 3) and scores (50).

Runs the exported ONNX model with ONNX Runtime on CPU (for servers without an onnxruntime or
TensorRT backend). Input checks and length grouping are `ugt_runtime.model_step`.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from triton_io import input_array, model_parameters, to_responses, version_dir
from ugt_runtime.batching import answer_batch
from ugt_runtime.contract import ENCODER_INPUTS
from ugt_runtime.model_step import EncoderLimits, check_encoder_inputs, run_by_length


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = model_parameters(args)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params["intra_op_threads"])
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads burn the cores that preprocess/postprocess need between batches.
        spinning = params.get("allow_spinning", "false") == "true"
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        # The arena keeps its peak for good; max_batch_tokens bounds that peak. Memory patterns are cached
        # per input shape, and the ragged batches bring hundreds of shapes: off.
        options.enable_cpu_mem_arena = params.get("memory_arena", "true") == "true"
        options.enable_mem_pattern = False
        self.max_tokens = int(params.get("max_batch_tokens", 0)) or None
        model_path = str(version_dir(args) / params["model_file"])
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        self.limits = EncoderLimits(
            codebook_sizes=tuple(int(v) for v in params["codebook_sizes"].split(",")),
            max_seq_length=int(params["max_seq_length"]),
            num_token_types=int(params["num_token_types"]),
        )

    def execute(self, requests: list) -> list:
        return to_responses(answer_batch(requests, self._parse, self._infer))

    def _parse(self, request) -> dict[str, np.ndarray]:  # noqa: ANN001
        tensors = {name: input_array(request, name) for name in ENCODER_INPUTS}
        check_encoder_inputs(tensors, self.limits)
        return tensors

    def _infer(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        return run_by_length(requests, lambda feed: self.session.run(None, feed), self.max_tokens)
