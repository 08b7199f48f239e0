"""Triton Python backend `postprocess`: (K, 3) codes and scores -> ITEM_IDS, SCORES, SEMANTIC_IDS.

A thin adapter over `ugt_runtime.decoding` (copied beside this file by `python -m ugt_ensemble build` with
the catalog folder it memory-maps): unknown codes become padding and repeated items are dropped, so every
answer is distinct catalog items whatever the model returns. In the ensemble the rules are the model step's
(a model that does not honour them in its search is never sent any: preprocess refuses them), so no rule tensor
reaches this step; a caller of this step alone may send the four rule tensors, and then every slot is also
checked against them.
"""

from __future__ import annotations

import numpy as np

from ugt_runtime.batching import answer_batch, row_bounds
from ugt_runtime.constraint_data import ConstraintData
from ugt_runtime.contract import MODEL_SCORES, NUM_LEVELS, RECOMMENDATIONS, RULE_NAMES
from ugt_runtime.decoding import decode_recommendations
from ugt_runtime.errors import RequestError
from ugt_runtime.model_step import check_rule_inputs, concat_rows
from ugt_runtime.parameters import PostprocessParameters
from ugt_runtime.rule_lists import RuleListLimits, bound_rule_lists, width_groups
from ugt_runtime.rules import eligible_mask
from ugt_runtime.step_metrics import StepMetrics
from ugt_runtime.triton_io import FailureCounter, input_arrays, model_config, required, to_responses, version_dir


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.metrics = StepMetrics(args)  # probes apart, short answers, the catalog, stub starts
        params = PostprocessParameters.from_model_config(model_config(args), f"{version_dir(args)}/../config.pbtxt")
        self.data = ConstraintData.load(version_dir(args) / params.catalog_file)
        self.k = params.num_recommendations
        self.list_limits = RuleListLimits.of(self.data.num_items, self.data.num_pairs, params.max_rule_list)
        self.failures = FailureCounter(args)  # Triton's own statistics count a refused request as a success
        self.metrics.catalog(self.data.num_items, self.data.index.fingerprint())

    def finalize(self) -> None:
        self.metrics.close()  # sends the counts not sent yet

    def execute(self, requests: list) -> list:
        probes = self.metrics.traffic(requests)
        outcomes = answer_batch(requests, self._parse, self._decode, self.data.files.check)
        self.failures.count(outcomes)
        self.metrics.answers(outcomes, probes)
        return to_responses(outcomes)

    def _parse(self, request) -> dict[str, np.ndarray]:  # noqa: ANN001
        arrays = input_arrays(request)
        codes, scores = required(arrays, RECOMMENDATIONS), required(arrays, MODEL_SCORES)
        if codes.shape[1:] != (self.k, NUM_LEVELS) or scores.shape != codes.shape[:2]:
            raise RequestError(
                f"expected recommendations [rows, {self.k}, {NUM_LEVELS}] and scores [rows, {self.k}], "
                f"got {list(codes.shape)} and {list(scores.shape)}"
            )
        parsed = {RECOMMENDATIONS: codes, MODEL_SCORES: scores}
        sent = [name for name in RULE_NAMES if name in arrays]
        if not sent:  # the ensemble's requests: the model step applied the rules
            return parsed
        if len(sent) < len(RULE_NAMES):
            raise RequestError(f"send all of the rule tensors {list(RULE_NAMES)} or none; got only {sent}")
        parsed.update((name, arrays[name]) for name in RULE_NAMES)
        check_rule_inputs(parsed, self.data)
        return bound_rule_lists(parsed, self.list_limits)  # surplus padding trimmed, long lists refused

    def _decode(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        codes = np.concatenate([r[RECOMMENDATIONS] for r in requests])
        scores = np.concatenate([r[MODEL_SCORES] for r in requests])
        ruled = any(RULE_NAMES[0] in r for r in requests)
        eligible = (lambda positions: self._eligible(requests, positions)) if ruled else None
        decoded = decode_recommendations(codes, scores, self.data.index, eligible)
        return [decoded.rows(start, stop) for start, stop in row_bounds([len(r[RECOMMENDATIONS]) for r in requests])]

    def _eligible(self, requests: list[dict[str, np.ndarray]], positions: np.ndarray) -> np.ndarray:
        """Each rule-carrying request's rows checked against its rules, one call per width group (short lists never
        padded to another request's long ones); rows of requests without rule tensors keep every catalog item."""
        eligible = positions >= 0
        bounds = row_bounds([len(r[RECOMMENDATIONS]) for r in requests])
        ruled = [i for i, r in enumerate(requests) if RULE_NAMES[0] in r]
        for group in width_groups([requests[i] for i in ruled]):
            members = [ruled[g] for g in group]
            rules = {name: concat_rows([requests[i][name] for i in members]) for name in RULE_NAMES}
            rows = np.concatenate([np.arange(*bounds[i]) for i in members])
            eligible[rows] = eligible_mask(positions[rows], rules, self.data)
        return eligible
