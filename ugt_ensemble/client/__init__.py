"""Clients of the ensemble: gRPC (`RecommendClient`), in-process (`LocalPipeline`), what they return, and the
closed-loop load client (`run_load`, `BenchmarkResult`).

Imported lazily (the gRPC client needs tritonclient, the local pipeline torch).
"""

from __future__ import annotations

from ugt_ensemble.lazy import lazy_getattr

_NAMES = {
    "RecommendClient": ".grpc_client",
    "LocalPipeline": ".local",
    "Failure": ".results",
    "Recommendation": ".results",
    "RecommendError": ".results",
    "Result": ".results",
    "with_rules": ".results",
    "BenchmarkResult": ".load_results",
    "LoadSpec": ".load",
    "run_load": ".load",
}
__all__ = sorted(_NAMES)

__getattr__ = lazy_getattr(__name__, _NAMES)
