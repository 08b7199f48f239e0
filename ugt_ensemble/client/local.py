"""`LocalPipeline`: the ensemble's three steps in-process (same runtime code, PyTorch model).

It is the reference the served ensemble is tested against, and the "client-side packing" design
that the benchmark compares with.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ugt_ensemble.client.results import Failure, HistoryLike, Recommendation, Result, history_payload
from ugt_ensemble.model.ugt import UGT
from ugt_ensemble.runtime.batching import answer_batch
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS
from ugt_ensemble.runtime.decoding import decode_recommendations, packed_history
from ugt_ensemble.runtime.history import History, HistoryLimits, parse_history
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories


class LocalPipeline:
    """parse (runtime) -> pack (runtime) -> PyTorch UGT -> decode (runtime), one batch per call."""

    def __init__(
        self,
        model: UGT,
        index: CatalogIndex,
        packing: PackingConfig = PackingConfig(),
        limits: HistoryLimits = HistoryLimits(),
        exclude_history: bool = False,
    ) -> None:
        self.model = model.eval()
        self.index = index
        self.packing = packing
        self.limits = limits
        self.exclude_history = exclude_history

    def recommend(self, histories: Sequence[HistoryLike]) -> list[Result]:
        """One result per history, in order; malformed histories get a `Failure`."""
        outcomes = answer_batch(list(histories), lambda h: parse_history(history_payload(h), self.limits), self._run)
        return [Failure(o.error) if o.error is not None else Recommendation.from_outputs(o.outputs) for o in outcomes]

    def pack(self, histories: Sequence[HistoryLike]) -> dict[str, np.ndarray]:
        """Client-side packing: the six encoder tensors (rows, T) of valid histories.

        Raises `HistoryError` on the first malformed history.
        """
        parsed = [parse_history(history_payload(h), self.limits) for h in histories]
        return pack_histories(parsed, self.index, self.packing).tensors

    def _run(self, histories: list[History]) -> list[dict[str, np.ndarray]]:
        packed = pack_histories(histories, self.index, self.packing).tensors
        with torch.no_grad():
            codes, scores = self.model(*(torch.from_numpy(packed[name]) for name in ENCODER_INPUTS))
        history, mask = packed_history(packed) if self.exclude_history else (None, None)
        decoded = decode_recommendations(codes.numpy(), scores.numpy(), self.index, history, mask)
        return [decoded.rows(i, i + 1) for i in range(len(histories))]
