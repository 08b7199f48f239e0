"""A small generative recommender that is not UGT: a SASRec-style causal encoder and dot-product scorers,
made a model step by ugt-ensemble's catalog-constrained decoder (`ConstrainedRecommender`).

Items are (l1, l2, l3) semantic IDs. The encoder embeds each event as the sum of its three code
embeddings, its position and its event type, runs causal self-attention and takes the state at the last
event. Each level's scorer turns the user state and the codes chosen so far into a query and scores the
candidate codes by a dot product with their embeddings.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ugt_ensemble.catalog import Catalog
from ugt_ensemble.model.constrained import ConstrainedRecommender
from ugt_ensemble.runtime.contract import NUM_TOKEN_TYPES


class CausalBlock(nn.Module):
    """Causal multi-head self-attention and a feed-forward layer (pre-norm)."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Linear(2 * d_model, d_model))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width // self.heads) + bias, dim=-1)
        x = x + self.out((weights @ v).transpose(1, 2).reshape(batch, length, width))
        return x + self.ffn(self.norm2(x))


class SASRecEncoder(nn.Module):
    """The six encoder tensors -> the state at each history's last event (a learned start for an empty one)."""

    def __init__(self, codebook_sizes: tuple[int, int, int], d_model: int = 32, layers: int = 2, max_length: int = 256):
        super().__init__()
        self.codes = nn.ModuleList(nn.Embedding(size, d_model) for size in codebook_sizes)
        self.position = nn.Embedding(max_length, d_model)
        self.event_type = nn.Embedding(NUM_TOKEN_TYPES, d_model)
        self.blocks = nn.ModuleList(CausalBlock(d_model, 2) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.start = nn.Parameter(torch.randn(d_model) * 0.1)  # the state of an empty history (no ties)

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201 - the step contract
        x = self.codes[0](l1) + self.codes[1](l2) + self.codes[2](l3) + self.position(positions)
        x = (x + self.event_type(token_types)) * mask.unsqueeze(-1)
        steps = torch.arange(x.shape[1], device=x.device)
        causal = steps.unsqueeze(0) > steps.unsqueeze(1)  # (T, T): a position sees itself and the past
        bias = torch.where(causal.unsqueeze(0) | (mask.unsqueeze(1) == 0), -1e9, 0.0).unsqueeze(1)
        for block in self.blocks:
            x = block(x, bias)
        last = (positions == (mask.sum(-1, keepdim=True) - 1).to(positions.dtype)) & (mask > 0)
        return self.norm((x * last.unsqueeze(-1).to(x.dtype)).sum(dim=1) + self.start)


class DotProductScorer(nn.Module):
    """Level l: query = user state + the chosen codes' embeddings; logit = query . candidate embedding."""

    def __init__(self, codebook_sizes: tuple[int, int, int], d_model: int = 32) -> None:
        super().__init__()
        self.targets = nn.ModuleList(nn.Embedding(size, d_model) for size in codebook_sizes)
        self.prefix = nn.ModuleList(nn.Embedding(size, d_model) for size in codebook_sizes[:2])
        for table in (*self.targets, *self.prefix):
            nn.init.normal_(table.weight, std=d_model**-0.5)

    def forward(self, level: int, user: torch.Tensor, prefix: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        query = user.unsqueeze(1).expand(-1, prefix.shape[1], -1)
        for chosen in range(level):
            query = query + self.prefix[chosen](prefix[..., chosen])
        rows = self.targets[level](candidates)  # (B, K, C, D)
        return (rows @ query.unsqueeze(-1)).squeeze(-1)


def make_recommender(
    catalog: Catalog, d_model: int = 32, max_length: int = 256, seed: int = 0
) -> ConstrainedRecommender:
    """The recommender over `catalog`, seeded, in eval mode."""
    torch.manual_seed(seed)
    sizes = catalog.codebook_sizes
    encoder = SASRecEncoder(sizes, d_model, max_length=max_length)
    model = ConstrainedRecommender(encoder, DotProductScorer(sizes, d_model), catalog.prefix_tables())
    return model.eval()


def train(
    model: ConstrainedRecommender, catalog: Catalog, steps: int = 100, batch: int = 32, length: int = 16
) -> tuple[float, float]:
    """A few steps of next-item training on synthetic sessions (each session stays within one l1 cluster,
    so there is something to learn); teacher forcing at each level. Returns the first and last loss."""
    rng = np.random.default_rng(0)
    by_l1: dict[int, list[int]] = {}
    for row, l1 in enumerate(catalog.codes[:, 0]):
        by_l1.setdefault(int(l1), []).append(row)
    clusters = [np.array(rows) for rows in by_l1.values() if len(rows) > 1]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        rows = np.stack([rng.choice(clusters[rng.integers(len(clusters))], length + 1) for _ in range(batch)])
        codes = torch.from_numpy(catalog.codes[rows])
        history, target = codes[:, :-1], codes[:, -1]
        positions = torch.arange(length).expand(batch, -1)
        user = model.encoder(history[..., 0], history[..., 1], history[..., 2], positions,
                             torch.ones_like(positions), torch.ones(batch, length))  # fmt: skip
        loss = sum(_level_loss(model, level, user, target) for level in range(3))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return (losses[0], losses[-1]) if losses else (float("nan"), float("nan"))


def _level_loss(model: ConstrainedRecommender, level: int, user: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    vocab = model.scorer.targets[level].num_embeddings
    candidates = torch.arange(vocab).expand(len(target), 1, vocab)
    logits = model.scorer(level, user, target[:, None, :level], candidates).squeeze(1)
    return nn.functional.cross_entropy(logits, target[:, level])
