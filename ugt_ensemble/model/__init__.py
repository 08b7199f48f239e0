"""Model steps in PyTorch: the catalog-constrained decoder (a building block for any recommender), the
UGT reference model built on it, checkpoints, and the step-contract checks.

Nothing here is imported with the package, so commands that need no torch stay quick; import the
modules (`ugt_ensemble.model.ugt`, `.constrained`, ...) or the names below.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "CandidateHead": "constrained",
    "ConstrainedRecommender": "constrained",
    "PerLevelScorer": "constrained",
    "UGT": "ugt",
    "build_model": "ugt",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "save_step_model": "sources",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"ugt_ensemble.model.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'ugt_ensemble.model' has no attribute {name!r}")
