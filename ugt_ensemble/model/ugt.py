"""The UGT recommender: history encoder + catalog-constrained beam-search decoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.model.constraints import PrefixTables
from ugt_ensemble.model.decoder import ConstrainedBeamDecoder
from ugt_ensemble.model.encoder import HistoryEncoder


class UGT(nn.Module):
    """(six encoder tensors, each (B, T)) -> recommendations (B, 50, 3) int64, scores (B, 50) fp32."""

    def __init__(self, config: UGTConfig, tables: PrefixTables) -> None:
        super().__init__()
        self.config = config
        self.tables = tables  # the catalog's constraint tables (numpy), kept for exporters and tests
        self.encoder = HistoryEncoder(config)
        self.decoder = ConstrainedBeamDecoder(config, tables)

    def forward(
        self,
        encoder_l1_ids: torch.Tensor,
        encoder_l2_ids: torch.Tensor,
        encoder_l3_ids: torch.Tensor,
        encoder_positions: torch.Tensor,
        encoder_token_types: torch.Tensor,
        encoder_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        user = self.encoder(
            encoder_l1_ids,
            encoder_l2_ids,
            encoder_l3_ids,
            encoder_positions,
            encoder_token_types,
            encoder_mask,
        )
        return self.decoder(user)


def build_model(config: UGTConfig, tables: PrefixTables, seed: int = 0) -> UGT:
    """A UGT in eval mode with a seeded, deterministic initialisation (same seed, same weights)."""
    model = UGT(config, tables)
    initialise(model, seed)
    return model.eval()


def initialise(model: nn.Module, seed: int) -> None:
    """Deterministic init from a private generator (the global torch RNG is left untouched)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias" or name.endswith("pool_query"):
                param.zero_()
            elif "norm" in name:
                param.fill_(1.0)
            else:
                std = 1.0 / math.sqrt(param.shape[-1]) if _is_output_head(name) else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def _is_output_head(name: str) -> bool:
    return name.startswith("decoder.head")
