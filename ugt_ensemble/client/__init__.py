"""Clients of the ensemble: gRPC (`RecommendClient`), in-process (`LocalPipeline`), what they return.

Imported lazily (the gRPC client needs tritonclient, the local pipeline torch).
"""

from __future__ import annotations

from ugt_ensemble.lazy import lazy_getattr

_NAMES = {
    "RecommendClient": ".grpc_client",
    "LocalPipeline": ".local",
    "Failure": ".results",
    "Recommendation": ".results",
    "Result": ".results",
}
__all__ = sorted(_NAMES)

__getattr__ = lazy_getattr(__name__, _NAMES)
