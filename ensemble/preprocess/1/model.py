"""Triton Python backend `preprocess`: HISTORY (one JSON document per row) -> the encoder and rule tensors (as one
bundle tensor when the model step is a Python-backend model).

A thin adapter: parsing, packing and the rules are `ugt_runtime.history`, `ugt_runtime.packing` and
`ugt_runtime.rules`, copied beside this file by `python -m ugt_ensemble build` with the catalog folder it
memory-maps (the same files as the other steps: one copy in memory).
"""

from __future__ import annotations

import numpy as np

from ugt_runtime.batching import answer_batch, row_bounds
from ugt_runtime.constraint_data import ConstraintData
from ugt_runtime.contract import HISTORY
from ugt_runtime.errors import RequestError
from ugt_runtime.history import History, HistoryError, HistoryLimits, parse_request
from ugt_runtime.packing import PackingConfig, pack_histories
from ugt_runtime.parameters import PreprocessParameters
from ugt_runtime.rule_request import RuleRequest
from ugt_runtime.rules import check_list_length, pack_rules
from ugt_runtime.step_metrics import StepMetrics
from ugt_runtime.tensor_bundle import BUNDLE, bundle_step_inputs
from ugt_runtime.triton_io import FailureCounter, input_array, model_config, to_responses, version_dir

Row = tuple[History, RuleRequest]


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.metrics = StepMetrics(args)  # probes apart, rule use, stub starts (see ugt_runtime.metric_names)
        params = PreprocessParameters.from_model_config(model_config(args), f"{version_dir(args)}/../config.pbtxt")
        self.data = ConstraintData.load(version_dir(args) / params.catalog_file)
        self.data.index.id_buckets()  # the item id lookups' index (~10 ms per 1M items), before any request
        self.limits = HistoryLimits(params.max_request_bytes, params.max_events)
        self.packing = PackingConfig(params.max_seq_length, params.length_buckets)
        self.exclude_history, self.rules_in_search = params.exclude_history, params.rules_in_search
        self.max_rule_list = params.max_rule_list  # 0: no bound (a TensorRT step's profile has one)
        self.failures = FailureCounter(args)  # Triton's own statistics count a refused request as a success
        # One bundle tensor to a Python-backend model step (its config says so), else the step's own tensors
        self.bundle = any(output["name"] == BUNDLE for output in model_config(args).get("output", []))

    def finalize(self) -> None:
        self.metrics.close()  # sends the counts not sent yet

    def execute(self, requests: list) -> list:
        self.metrics.traffic(requests)
        outcomes = answer_batch(requests, self._parse, self._pack, self.data.files.check)
        self.failures.count(outcomes)
        return to_responses(outcomes)

    def _parse(self, request) -> list[Row]:  # noqa: ANN001
        documents = input_array(request, HISTORY).reshape(-1)
        rows = []
        for row, raw in enumerate(documents):
            try:
                rows.append(self._checked(parse_request(raw, self.limits)))
            except HistoryError as exc:
                raise HistoryError(f"row {row}: {exc}" if len(documents) > 1 else str(exc)) from None
        self.metrics.rules(request, [rules for _, rules in rows], self.exclude_history)
        return rows

    def _checked(self, parsed: Row) -> Row:
        rules = parsed[1]
        if not self.rules_in_search and rules.uses_rules(self.exclude_history):
            raise HistoryError(
                "this repository's model does not honour business rules in its search (it declares no rule "
                "inputs); send a plain list of events, or serve a model built on ConstrainedRecommender"
            )
        try:
            self.data.check_request(rules)
            if self.max_rule_list:
                check_list_length(rules, parsed[0].item_ids, self.data, self.exclude_history, self.max_rule_list)
        except RequestError as exc:
            raise HistoryError(str(exc)) from None
        return parsed

    def _pack(self, requests: list[list[Row]]) -> list[dict[str, np.ndarray]]:
        rows = [row for request in requests for row in request]
        histories = [history for history, _ in rows]
        packed = pack_histories(histories, self.data.index, self.packing)
        answers = []
        for request, (start, stop) in zip(requests, row_bounds([len(request) for request in requests])):
            answer = packed.rows(start, stop)
            # Each request's rule lists at its own width (never padded to another request's longer ones); at
            # most `rule_lists.request_list_limit(max_events)` entries a row, or `max_rule_list` (checked above).
            if self.rules_in_search:  # else every request was refused rules, and the model step takes none
                rules = [r for _, r in request]
                answer.update(pack_rules(rules, [h.item_ids for h, _ in request], self.data, self.exclude_history))
            answers.append(bundle_step_inputs(answer, self.rules_in_search) if self.bundle else answer)
        return answers
