"""Model steps in PyTorch: the catalog-constrained decoder (a building block for any recommender), the
UGT reference model built on it, checkpoints, and the step-contract checks.

Nothing here is imported with the package, so commands that need no torch stay quick; import the
modules (`ugt_ensemble.model.ugt`, `.constrained`, ...) or the names below.
"""

from __future__ import annotations

from ugt_ensemble.lazy import lazy_getattr

_NAMES = {
    "CandidateHead": ".constrained",
    "ConstrainedRecommender": ".constrained",
    "PerLevelScorer": ".constrained",
    "UGT": ".ugt",
    "build_model": ".ugt",
    "load_checkpoint": ".checkpoint",
    "read_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "save_step_model": ".sources",
}
__all__ = sorted(_NAMES)

__getattr__ = lazy_getattr(__name__, _NAMES)
