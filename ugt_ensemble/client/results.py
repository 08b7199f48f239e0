"""What a client gets back per history, and its error contract.

`recommend_one` / `recommend` return `Recommendation`s and raise `RecommendError` (the server's message, its
status and the failed row) when a history is refused, as tritonclient raises `InferenceServerException`;
`recommend_results` never raises for a refused history: it returns one `Result` per row, a `Recommendation` or
a `Failure`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from ugt_ensemble.runtime.contract import ITEM_IDS, PAD_ITEM_ID, SCORES, SEMANTIC_IDS
from ugt_ensemble.runtime.errors import UgtEnsembleError

#: A history as a client holds it: a JSON document (str/bytes), the list of events itself, or the document's
#: object form with business rules (`with_rules`).
HistoryLike = Union[str, bytes, list, dict]


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
    """The error the server (or the local pipeline) returned for one history: its message, the history's `row`
    in the call, and the gRPC `status` (e.g. "StatusCode.INVALID_ARGUMENT"; None from the local pipeline)."""

    error: str
    row: int | None = None
    status: str | None = None

    @property
    def ok(self) -> bool:
        return False


Result = Union[Recommendation, Failure]


class RecommendError(UgtEnsembleError):
    """A history was refused (a malformed history, an unknown item set, a failed step...).

    Attributes:
        message: the server's message, as it sent it.
        row: the history's index in the call (0 for `recommend_one`).
        status: the gRPC status ("StatusCode.INVALID_ARGUMENT": the client's fault), None from the local pipeline.
        results: every row's `Result` of the call (the other rows' answers are not lost).
    """

    def __init__(self, failure: Failure, results: Sequence[Result] = ()) -> None:
        self.message, self.row, self.status = failure.error, failure.row, failure.status
        self.results = list(results) or [failure]
        others = sum(not r.ok for r in self.results) - 1
        more = f" (and {others} more failed histories)" if others > 0 else ""
        status = f"[{self.status}] " if self.status else ""
        super().__init__(f"history {self.row}: {status}{self.message}{more}")


def raise_failures(results: Sequence[Result]) -> list[Recommendation]:
    """`results` if every row was answered, else `RecommendError` for the first failed row."""
    for result in results:
        if not result.ok:
            raise RecommendError(result, results)  # type: ignore[arg-type]
    return list(results)  # type: ignore[arg-type]


def with_rules(
    events: list | str | bytes,
    exclude_history: bool | None = None,
    exclude: Sequence[int] = (),
    sets: Sequence[str] = (),
) -> dict:
    """The HISTORY document asking for business rules (README, "Business rules"): `events` (a list, or its JSON),
    `exclude_history` (None: the repository's default), item ids to `exclude`, and item `sets` to draw from."""
    if isinstance(events, (str, bytes)):
        events = json.loads(events)
    if isinstance(events, dict):
        raise ValueError("this history is a document with rules already; give its events")
    document: dict = {"events": events}
    if exclude_history is not None:
        document["exclude_history"] = bool(exclude_history)
    if len(exclude):
        document["exclude"] = [int(i) for i in exclude]
    if len(sets):
        document["sets"] = [str(name) for name in sets]
    return document


def history_payload(history: HistoryLike) -> bytes:
    """The HISTORY bytes of a history: documents are sent as they are, lists as compact JSON."""
    if isinstance(history, bytes):
        return history
    if isinstance(history, str):
        return history.encode("utf-8")
    return json.dumps(history, separators=(",", ":")).encode("utf-8")
