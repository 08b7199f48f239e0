"""What a running server answers: a real inference through an ensemble (the only check that a Python-backend
stub answers: Triton's readiness endpoints keep saying 200 after a stub died), whether the answer holds items,
and how much a model served."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.errors import ServerError
from ugt_ensemble.runtime.contract import ITEM_IDS, PAD_ITEM_ID
from ugt_ensemble.runtime.metric_names import PROBE_PARAMETER

#: The probe's history: empty, so it is valid for every catalog (a cold-start answer).
PROBE_HISTORY = b"[]"


class EmptyAnswerError(ServerError):
    """A probe was answered without a single item, where answers held items before (damaged data, not load)."""


def probe_ensemble(grpc_url: str, model_name: str, timeout_s: float = 10.0) -> int:
    """Send one request to `model_name`; the number of items in its answer (not padding). ServerError with the
    server's message if it fails. The request carries the probe's parameter (`PROBE_PARAMETER`): Triton hands it
    to every step, which count the request as probe traffic, apart from users' (`runtime.metric_names`)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from ugt_ensemble.client.grpc_client import history_tensor

    with grpcclient.InferenceServerClient(grpc_url) as client:
        try:
            answer = client.infer(
                model_name,
                [history_tensor([PROBE_HISTORY])],
                outputs=[grpcclient.InferRequestedOutput(ITEM_IDS)],
                client_timeout=timeout_s,
                parameters={PROBE_PARAMETER: True},
            )
        except InferenceServerException as exc:
            message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
            raise ServerError(f"a probe request to {model_name!r} at {grpc_url} failed: {message}") from None
    return int((answer.as_numpy(ITEM_IDS) != PAD_ITEM_ID).sum())


@dataclass
class ProbeContent:
    """The probe with a content check: every catalog item is eligible for the probe's request (no history, no
    rules), so an answer without any item, after answers with items, is a failure (`EmptyAnswerError`), not a
    success: a catalog file truncated under a step's memory map reads as zeros and empties every answer.
    `items` is the first answer's count (the steps checked their data at load); a model that answers the probe
    with no item from the start is not checked."""

    items: int | None = None

    def probe(self, grpc_url: str, model_name: str, timeout_s: float = 10.0) -> int:
        """`probe_ensemble`, then the content check; the number of items."""
        found = probe_ensemble(grpc_url, model_name, timeout_s)
        if self.items is None:
            self.items = found
        elif found == 0 and self.items > 0:
            raise EmptyAnswerError(
                f"a probe request to {model_name!r} at {grpc_url} was answered with no item (all padding), where "
                f"it had {self.items} before and every catalog item is eligible: is the served data damaged?"
            )
        return found


def served_counts(grpc_url: str, model_name: str, timeout_s: float | None = 10.0) -> tuple[int, int]:
    """(successful requests, inferences) `model_name` has served so far, over all its versions (Triton's
    statistics; a request of k histories is k inferences, and response-cache hits count as requests only)."""
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(grpc_url) as client:
        answer = client.get_inference_statistics(model_name, as_json=True, client_timeout=timeout_s)
    stats = answer.get("model_stats", [])
    requests = sum(int(m.get("inference_stats", {}).get("success", {}).get("count", 0)) for m in stats)
    return requests, sum(int(m.get("inference_count", 0)) for m in stats)
