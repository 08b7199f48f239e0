"""A small next-item recommender on ugt-ensemble's public blocks: a causal transformer encoder, and a
`PerLevelScorer` of three `CandidateHead`s inside `ConstrainedRecommender` (every answer a catalog item).

Level 1 scores the user state; levels 2 and 3 add the embeddings of the codes chosen before, then score
only the catalog's children of that prefix (`CandidateHead` reads the candidates' rows).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ugt_ensemble.catalog import Catalog
from ugt_ensemble.model.constrained import CandidateHead, ConstrainedRecommender, PerLevelScorer, expand_beams
from ugt_ensemble.runtime.contract import NUM_TOKEN_TYPES


class Encoder(nn.Module):
    """The six encoder tensors -> the state after each history's last event (a learned start if empty)."""

    def __init__(self, codebook_sizes: tuple[int, int, int], d_model: int, max_length: int, layers: int = 2) -> None:
        super().__init__()
        self.codes = nn.ModuleList(nn.Embedding(size, d_model) for size in codebook_sizes)
        self.position = nn.Embedding(max_length, d_model)
        self.event_type = nn.Embedding(NUM_TOKEN_TYPES, d_model)
        self.blocks = nn.ModuleList(Block(d_model) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.start = nn.Parameter(torch.zeros(d_model))

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201 - the step contract
        x = self.codes[0](l1) + self.codes[1](l2) + self.codes[2](l3) + self.position(positions)
        x = (x + self.event_type(token_types)) * mask.unsqueeze(-1)
        steps = torch.arange(x.shape[1], device=x.device)
        hidden = (steps.unsqueeze(0) > steps.unsqueeze(1)).unsqueeze(0) | (mask.unsqueeze(1) == 0)
        bias = torch.where(hidden, -1e9, 0.0).unsqueeze(1)
        for block in self.blocks:
            x = block(x, bias)
        last = (positions == (mask.sum(-1, keepdim=True) - 1).to(positions.dtype)) & (mask > 0)
        return self.norm((x * last.unsqueeze(-1).to(x.dtype)).sum(dim=1) + self.start)


class Block(nn.Module):
    """Pre-norm causal self-attention (2 heads) and a feed-forward layer."""

    def __init__(self, d_model: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width // self.heads) + bias, dim=-1)
        x = x + self.out((weights @ v).transpose(1, 2).reshape(batch, length, width))
        return x + self.ffn(self.norm2(x))


class PrefixLevel(nn.Module):
    """A level after the first: the user state plus the chosen codes' embeddings, scored by a CandidateHead."""

    def __init__(self, earlier_sizes: tuple[int, ...], vocab: int, d_model: int, max_candidates: int) -> None:
        super().__init__()
        self.prefix = nn.ModuleList(nn.Embedding(size, d_model) for size in earlier_sizes)
        self.head = CandidateHead(vocab, d_model, max_candidates)

    def forward(self, user: torch.Tensor, prefix: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        state = expand_beams(user, prefix.shape[1])
        for level, table in enumerate(self.prefix):
            state = state + table(prefix[..., level])
        return self.head(state, candidates)


def make_recommender(
    catalog: Catalog, d_model: int = 32, max_length: int = 64, seed: int = 0
) -> ConstrainedRecommender:
    """The recommender over `catalog`, seeded."""
    torch.manual_seed(seed)
    v1, v2, v3 = catalog.codebook_sizes
    tables = catalog.prefix_tables()
    scorer = PerLevelScorer(
        CandidateHead(v1, d_model, v1),  # level 1: all level-1 codes, read from the user state
        PrefixLevel((v1,), v2, d_model, tables.max_l2_children),
        PrefixLevel((v1, v2), v3, d_model, tables.max_l3_children),
    )
    return ConstrainedRecommender(Encoder(catalog.codebook_sizes, d_model, max_length), scorer, tables)
