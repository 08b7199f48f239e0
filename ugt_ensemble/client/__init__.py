"""Clients of the ensemble: gRPC (`RecommendClient`), in-process (`LocalPipeline`), what they return.

Imported lazily (the gRPC client needs tritonclient, the local pipeline torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "RecommendClient": "grpc_client",
    "LocalPipeline": "local",
    "Failure": "results",
    "Recommendation": "results",
    "Result": "results",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"ugt_ensemble.client.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'ugt_ensemble.client' has no attribute {name!r}")
