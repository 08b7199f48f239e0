"""The UGT reference recommender (PyTorch) and its catalog-constrained beam search."""

from ugt_ensemble.model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.model.constraints import PrefixTables
from ugt_ensemble.model.ugt import UGT, build_model

__all__ = [
    "PrefixTables",
    "UGT",
    "UGTConfig",
    "build_model",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
