"""What a running server answers: a real inference through an ensemble (the only check that a Python-backend
stub answers: Triton's readiness endpoints keep saying 200 after a stub died), and how much a model served."""

from __future__ import annotations

from ugt_ensemble.errors import ServerError

#: The probe's history: empty, so it is valid for every catalog (a cold-start answer).
PROBE_HISTORY = b"[]"


def probe_ensemble(grpc_url: str, model_name: str, timeout_s: float = 10.0) -> None:
    """Send one request to `model_name`; ServerError with the server's message if it fails."""
    from ugt_ensemble.client.grpc_client import RecommendClient

    with RecommendClient(grpc_url, model_name, timeout_s=timeout_s) as client:
        result = client.recommend_one(PROBE_HISTORY)
    if not result.ok:
        raise ServerError(f"a probe request to {model_name!r} at {grpc_url} failed: {result.error}")


def served_counts(grpc_url: str, model_name: str) -> tuple[int, int]:
    """(successful requests, inferences) `model_name` has served so far, over all its versions (Triton's
    statistics; a request of k histories is k inferences, and response-cache hits count as requests only)."""
    import tritonclient.grpc as grpcclient

    with grpcclient.InferenceServerClient(grpc_url) as client:
        stats = client.get_inference_statistics(model_name, as_json=True).get("model_stats", [])
    requests = sum(int(m.get("inference_stats", {}).get("success", {}).get("count", 0)) for m in stats)
    return requests, sum(int(m.get("inference_count", 0)) for m in stats)
