"""The UGT reference recommender: its history encoder and per-level scorers on `ConstrainedRecommender`."""

from __future__ import annotations

import math

import torch
from torch import nn

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.config.model import UGTConfig
from ugt_ensemble.model.constrained import CandidateHead, ConstrainedRecommender, expand_beams
from ugt_ensemble.model.encoder import HistoryEncoder, feed_forward


class DecoderCell(nn.Module):
    """Advances a beam's state with the embedding of the code it chose."""

    def __init__(self, d_model: int, ffn_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = feed_forward(d_model, ffn_dim)

    def forward(self, state: torch.Tensor, code_embedding: torch.Tensor) -> torch.Tensor:
        return state + self.ffn(self.norm(state + code_embedding))


class UGTScorer(nn.Module):
    """Level logits from the user state: a dense head at level 1; at levels 2 and 3 the state advanced by
    the chosen codes' embeddings, scored on the candidates' rows of the output projection."""

    def __init__(self, config: UGTConfig, tables: PrefixTables) -> None:
        super().__init__()
        v1, v2, v3 = config.codebook_sizes
        d = config.d_model
        self.norm = nn.LayerNorm(d)
        self.head1 = nn.Linear(d, v1)
        self.head2 = CandidateHead(v2, d, tables.max_l2_children)
        self.head3 = CandidateHead(v3, d, tables.max_l3_children)
        self.embed1 = nn.Embedding(v1, d)
        self.embed2 = nn.Embedding(v2, d)
        self.cell1 = DecoderCell(d, config.ffn_dim)
        self.cell2 = DecoderCell(d, config.ffn_dim)

    def forward(self, level: int, user: torch.Tensor, prefix: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        state = self.norm(user)
        if level == 0:
            return torch.gather(self.head1(state).unsqueeze(1), -1, candidates)
        state = self.cell1(expand_beams(state, prefix.shape[1]), self.embed1(prefix[..., 0]))
        if level == 1:
            return self.head2(state, candidates)
        return self.head3(self.cell2(state, self.embed2(prefix[..., 1])), candidates)


class UGT(ConstrainedRecommender):
    """The reference model: (six encoder tensors, each (B, T)) -> recommendations (B, K, 3), scores (B, K)."""

    def __init__(self, config: UGTConfig, tables: PrefixTables) -> None:
        super().__init__(
            HistoryEncoder(config), UGTScorer(config, tables), tables, config.beam_size, config.num_recommendations
        )
        self.config = config


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
                std = 1.0 / math.sqrt(param.shape[-1]) if name.startswith("scorer.head") else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)
