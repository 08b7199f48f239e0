"""What a client gets back per history: a `Recommendation` or a `Failure`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union

import numpy as np

from ugt_ensemble.runtime.contract import ITEM_IDS, PAD_ITEM_ID, SCORES, SEMANTIC_IDS

#: A history as a client holds it: a JSON document (str/bytes) or the list of events itself.
HistoryLike = Union[str, bytes, list]


@dataclass(frozen=True)
class Recommendation:
    """One history's answer: item_ids (50,), scores (50,), semantic_ids (50, 3); padding is -1 / -inf."""

    item_ids: np.ndarray
    scores: np.ndarray
    semantic_ids: np.ndarray

    @classmethod
    def from_outputs(cls, outputs: dict[str, np.ndarray]) -> Recommendation:
        return cls(outputs[ITEM_IDS].reshape(-1), outputs[SCORES].reshape(-1), outputs[SEMANTIC_IDS].reshape(-1, 3))

    @property
    def ok(self) -> bool:
        return True

    def items(self) -> list[tuple[int, float]]:
        """(item_id, score) of the real (non-padding) recommendations, best first."""
        return [(int(i), float(s)) for i, s in zip(self.item_ids, self.scores) if i != PAD_ITEM_ID]


@dataclass(frozen=True)
class Failure:
    """The error the server (or the local pipeline) returned for one history."""

    error: str

    @property
    def ok(self) -> bool:
        return False


Result = Union[Recommendation, Failure]


def history_payload(history: HistoryLike) -> bytes:
    """The HISTORY bytes of a history: documents are sent as they are, lists as compact JSON."""
    if isinstance(history, bytes):
        return history
    if isinstance(history, str):
        return history.encode("utf-8")
    return json.dumps(history, separators=(",", ":")).encode("utf-8")
