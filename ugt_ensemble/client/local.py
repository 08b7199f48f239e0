"""`LocalPipeline`: the ensemble's three steps in-process (same runtime code, PyTorch model).

It is the reference the served ensemble is tested against (rules included), and the "client-side packing"
design that the benchmark compares with.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ugt_ensemble.client.results import Failure, HistoryLike, Recommendation, Result, history_payload, raise_failures
from ugt_ensemble.runtime.batching import answer_batch
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, RULE_NAMES, TABLE_NAMES
from ugt_ensemble.runtime.decoding import decode_recommendations
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.history import History, HistoryLimits, parse_request
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import eligible_mask, pack_rules

Row = tuple[History, RuleRequest]


class LocalPipeline:
    """parse (runtime) -> pack histories and rules (runtime) -> PyTorch model -> decode (runtime), one batch per call.

    `model` is a module on `ConstrainedRecommender` (the rules go into its search, on `data`'s tables) or any
    model step taking the six encoder tensors (then a request with rules gets a `Failure`, as served).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: ConstraintData | CatalogIndex,
        packing: PackingConfig = PackingConfig(),
        limits: HistoryLimits = HistoryLimits(),
        exclude_history: bool = False,
    ) -> None:
        self.model = model.eval()
        self.rule_step = model.rule_step() if hasattr(model, "rule_step") else None
        if isinstance(data, CatalogIndex):
            data = ConstraintData.build(data, {}, getattr(model, "fanout_caps", None))
        self.data = data
        self.tables = {name: torch.from_numpy(np.array(table)) for name, table in data.tables().items()}
        self.packing, self.limits, self.exclude_history = packing, limits, exclude_history

    @property
    def index(self) -> CatalogIndex:
        return self.data.index

    def recommend(self, histories: Sequence[HistoryLike]) -> list[Recommendation]:
        """One answer per history, in order; `RecommendError` for the first refused one (as `RecommendClient`)."""
        return raise_failures(self.recommend_results(histories))

    def recommend_results(self, histories: Sequence[HistoryLike]) -> list[Result]:
        """One result per history, in order; malformed histories (and unknown sets, ...) get a `Failure`."""
        outcomes = answer_batch(list(histories), self._parse, self._run)
        return [
            Failure(o.error, row) if o.error is not None else Recommendation.from_outputs(o.outputs)
            for row, o in enumerate(outcomes)
        ]

    def pack(self, histories: Sequence[HistoryLike]) -> dict[str, np.ndarray]:
        """Client-side packing: the six encoder tensors (rows, T) of valid histories.

        Raises `HistoryError` on the first malformed history.
        """
        parsed = [parse_request(history_payload(h), self.limits)[0] for h in histories]
        return pack_histories(parsed, self.index, self.packing).tensors

    def _parse(self, history: HistoryLike) -> Row:
        parsed = parse_request(history_payload(history), self.limits)
        if self.rule_step is None and parsed[1].uses_rules(self.exclude_history):
            raise RequestError("this model does not honour business rules in its search")
        self.data.check_request(parsed[1])
        return parsed

    def _run(self, rows: list[Row]) -> list[dict[str, np.ndarray]]:
        histories = [history for history, _ in rows]
        packed = pack_histories(histories, self.index, self.packing).tensors
        rules = pack_rules([r for _, r in rows], [h.item_ids for h in histories], self.data, self.exclude_history)
        with torch.no_grad():
            if self.rule_step is not None:
                feed = {**packed, **rules}
                names = ENCODER_INPUTS + RULE_NAMES
                tensors = [torch.from_numpy(np.require(feed[name], requirements="W")) for name in names]
                codes, scores = self.rule_step(*tensors, *(self.tables[name] for name in TABLE_NAMES))
            else:
                codes, scores = self.model(*(torch.from_numpy(packed[name]) for name in ENCODER_INPUTS))
        codes, scores = codes.numpy(), scores.numpy()
        eligible = lambda positions: eligible_mask(positions, rules, self.data)  # noqa: E731 - one lookup of the codes
        decoded = decode_recommendations(codes, scores, self.index, eligible)
        return [decoded.rows(i, i + 1) for i in range(len(rows))]
