"""Triton Python backend model step: encoder tensors (and rule tensors), or the bundle of them that preprocess
sends, -> recommendations (K, 3) and scores (K).

Runs the exported ONNX model with ONNX Runtime on CPU (for servers without an onnxruntime or TensorRT
backend). A model that honours the business rules in its search also takes the served catalog's constraint
tables: they are memory-mapped once from the version's catalog folder (the same files, so the same pages, as
preprocess and postprocess) and fed to every call without a copy. Input checks and length grouping are
`ugt_runtime.model_step`, copied beside this file by `python -m ugt_ensemble build` with the model.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ugt_runtime.batching import answer_batch
from ugt_runtime.constraint_data import ConstraintData
from ugt_runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES
from ugt_runtime.data_files import FileGuard, verify_folder
from ugt_runtime.errors import RequestError
from ugt_runtime.model_step import EncoderLimits, check_encoder_inputs, check_rule_inputs, run_by_length, warm_up
from ugt_runtime.parameters import ModelStepParameters
from ugt_runtime.rule_lists import RuleListLimits, bound_rule_lists
from ugt_runtime.rules import default_rules
from ugt_runtime.step_metrics import StepMetrics
from ugt_runtime.tensor_bundle import step_inputs
from ugt_runtime.triton_io import FailureCounter, input_arrays, model_config, required, to_responses, version_dir


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.metrics = StepMetrics(args)  # probes apart, stub starts (see ugt_runtime.metric_names)
        self.failures = FailureCounter(args)  # Triton's own statistics count a refused request as a success
        params = ModelStepParameters.from_model_config(model_config(args), f"{version_dir(args)}/../config.pbtxt")
        options = ort.SessionOptions()
        options.intra_op_num_threads = params.intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads burn the cores that preprocess/postprocess need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if params.allow_spinning else "0")
        # The arena keeps its peak for good; max_batch_tokens bounds that peak. Memory patterns are cached
        # per input shape, and the ragged batches bring hundreds of shapes: off.
        options.enable_cpu_mem_arena = params.memory_arena
        options.enable_mem_pattern = False
        model_path = str(version_dir(args) / params.model_file)
        # The model files as the build recorded them (a damaged file is a load failure naming it), held open.
        self.files = FileGuard.open(version_dir(args), verify_folder(version_dir(args), required=False))
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        self.max_tokens, self.max_rule_entries = params.max_batch_tokens, params.max_rule_entries
        self.limits = EncoderLimits(params.codebook_sizes, params.max_seq_length, params.num_token_types)
        self.data = ConstraintData.load(version_dir(args) / params.catalog_file) if params.catalog_file else None
        self.tables = self.data.tables() if self.data is not None else {}  # memory-mapped, fed without a copy
        if self.data is not None:
            self.list_limits = RuleListLimits.of(self.data.num_items, self.data.num_pairs, params.max_rule_list)
        warm_up(self._infer, model_config(args), params.warmup_length)

    def finalize(self) -> None:
        self.metrics.close()  # sends the counts not sent yet

    def execute(self, requests: list) -> list:
        self.metrics.traffic(requests)
        outcomes = answer_batch(requests, self._parse, self._infer, self._check_files)
        self.failures.count(outcomes)
        return to_responses(outcomes)

    def _check_files(self) -> None:
        """Before each batch: the model's and the catalog's files still have their recorded sizes."""
        self.files.check()
        if self.data is not None:
            self.data.files.check()

    def _parse(self, request) -> dict[str, np.ndarray]:  # noqa: ANN001
        arrays = step_inputs(input_arrays(request), self.data is not None)  # from preprocess: one bundle
        tensors = {name: required(arrays, name) for name in ENCODER_INPUTS}
        check_encoder_inputs(tensors, self.limits)
        if self.data is None:
            return tensors
        sent = [name for name in RULE_NAMES if name in arrays]
        if not sent:  # packed tensors alone: a request without rules
            return tensors
        if len(sent) < len(RULE_NAMES):
            raise RequestError(f"send all of the rule tensors {list(RULE_NAMES)} or none; got only {sent}")
        tensors.update((name, arrays[name]) for name in RULE_NAMES)
        check_rule_inputs(tensors, self.data)
        return bound_rule_lists(tensors, self.list_limits)  # surplus padding trimmed, long lists refused

    def _infer(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if self.data is not None:  # requests without rule tensors (and the warm-up) get the no-rule ones
            requests = [r if RULE_NAMES[0] in r else {**r, **default_rules(self.data, len(r[ENCODER_INPUTS[0]]))}
                        for r in requests]  # fmt: skip
        outputs = list(MODEL_OUTPUTS)
        run = lambda feed: self.session.run(outputs, {**feed, **self.tables})  # noqa: E731
        return run_by_length(requests, run, self.max_tokens, self.max_rule_entries)
