"""`RecommendClient`: send raw histories to the ensemble over gRPC (tritonclient)."""

from __future__ import annotations

import threading
from typing import Protocol, Sequence

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from ugt_ensemble.client.results import (
    Failure,
    HistoryLike,
    Recommendation,
    RecommendError,
    Result,
    history_payload,
    raise_failures,
)
from ugt_ensemble.errors import ConfigError, ServerError
from ugt_ensemble.runtime.contract import HISTORY, ITEM_IDS, SCORES, SEMANTIC_IDS

OUTPUTS = (ITEM_IDS, SCORES, SEMANTIC_IDS)


class Router(Protocol):
    def route(self, user_id: str | int) -> str: ...


def history_tensor(documents: Sequence[bytes | str]) -> grpcclient.InferInput:
    """The HISTORY input of one request holding `documents` as its rows (shape [k, 1], BYTES; text is
    sent as UTF-8). The same class serves tritonclient's gRPC and asyncio clients."""
    rows = [d.encode("utf-8") if isinstance(d, str) else d for d in documents]
    tensor = grpcclient.InferInput(HISTORY, [len(rows), 1], "BYTES")
    tensor.set_data_from_numpy(np.array(rows, dtype=object).reshape(-1, 1))
    return tensor


class RecommendClient:
    """Sends each history as its own request, so a malformed one fails alone.

    `recommend_one` and `recommend` return `Recommendation`s and raise `RecommendError` (the server's message,
    status and the failed row) for a refused history; `recommend_results` returns a `Recommendation` or a
    `Failure` per row and raises only when the server does not answer (`ServerError`).

    With a `router` (e.g. `ugt_ensemble.serving.variants.ABTestingRouter`), a request that names its
    `user_id` goes to that user's variant. Use as a context manager, or call `close()`.
    """

    def __init__(
        self, url: str, model_name: str = "ugt_recommend", timeout_s: float = 60.0, router: Router | None = None
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.router = router
        self._client = grpcclient.InferenceServerClient(url)
        self._outputs = [grpcclient.InferRequestedOutput(name) for name in OUTPUTS]

    def model_for(self, user_id: str | int | None = None) -> str:
        """The ensemble a request of `user_id` goes to (its variant when there is a router)."""
        return self.router.route(user_id) if self.router is not None and user_id is not None else self.model_name

    def recommend_one(self, history: HistoryLike, user_id: str | int | None = None) -> Recommendation:
        """Send one history (of `user_id`, routed to its variant) and wait for its answer; `RecommendError` if the
        server refuses it."""
        try:
            result = self._client.infer(
                self.model_for(user_id),
                [history_tensor([history_payload(history)])],
                outputs=self._outputs,
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise RecommendError(_failure(exc, 0)) from None
        return _to_recommendation(result)

    def recommend(
        self,
        histories: Sequence[HistoryLike],
        concurrency: int = 8,
        user_ids: Sequence[str | int] | None = None,
    ) -> list[Recommendation]:
        """`recommend_results`, then `RecommendError` for the first refused history (its `results` hold every
        row's answer)."""
        return raise_failures(self.recommend_results(histories, concurrency, user_ids))

    def recommend_results(
        self,
        histories: Sequence[HistoryLike],
        concurrency: int = 8,
        user_ids: Sequence[str | int] | None = None,
    ) -> list[Result]:
        """Send every history as its own request, `concurrency` in flight; one `Recommendation` or `Failure` per
        history, in input order (a refused history does not raise).

        With `user_ids` (one per history), each request goes to its user's variant (see `model_for`).
        """
        if user_ids is not None and len(user_ids) != len(histories):
            raise ConfigError(f"{len(user_ids)} user_ids for {len(histories)} histories; give one per history")
        models = [self.model_for(u) for u in user_ids] if user_ids is not None else [self.model_name] * len(histories)
        results: list[Result | None] = [None] * len(histories)
        slots = threading.Semaphore(concurrency)
        done = threading.Event()
        remaining = [len(histories)]
        lock = threading.Lock()

        def finish(i: int, result, error) -> None:  # noqa: ANN001 - tritonclient callback types
            results[i] = _failure(error, i) if error is not None else _to_recommendation(result)
            slots.release()
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        if not histories:
            return []
        for i, history in enumerate(histories):
            slots.acquire()
            self._client.async_infer(
                models[i],
                [history_tensor([history_payload(history)])],
                callback=lambda result, error, i=i: finish(i, result, error),
                outputs=self._outputs,
                client_timeout=self.timeout_s,
            )
        if not done.wait(self.timeout_s * max(1, len(histories) // concurrency + 1)):
            raise ServerError(f"no answer from {self.url} for {remaining[0]} of {len(histories)} requests")
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RecommendClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _to_recommendation(result: grpcclient.InferResult) -> Recommendation:
    return Recommendation.from_outputs({name: result.as_numpy(name) for name in OUTPUTS})


def _failure(exc: InferenceServerException, row: int) -> Failure:
    """The `Failure` of row `row`: the server's message and gRPC status."""
    message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    status = exc.status() if hasattr(exc, "status") and callable(exc.status) else None
    return Failure(str(message), row, str(status) if status else None)
