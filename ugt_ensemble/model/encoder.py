"""The UGT history encoder: summed semantic-ID embeddings and a pre-LN transformer encoder.

Attention uses an additive padding bias (a large finite negative, not -inf) so that a history with
no real token (cold start) yields finite, deterministic states instead of NaN.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ugt_ensemble.config.model import UGTConfig

#: Additive attention bias for padded keys.
MASK_BIAS = -1e9


def feed_forward(d_model: int, hidden: int) -> nn.Sequential:
    """The feed-forward block of the encoder layers and decoder cells."""
    return nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key padding bias."""

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); key_bias: (B, 1, 1, T) additive."""
        batch, length, width = x.shape
        head = width // self.num_heads
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, head).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + key_bias, dim=-1)
        context = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out(context)


class EncoderLayer(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, config: UGTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attention = SelfAttention(config.d_model, config.num_heads)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ffn = feed_forward(config.d_model, config.ffn_dim)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), key_bias)
        return x + self.ffn(self.norm2(x))


class HistoryEncoder(nn.Module):
    """Encodes a packed history into one user state per row (attention pooling)."""

    def __init__(self, config: UGTConfig) -> None:
        super().__init__()
        v1, v2, v3 = config.codebook_sizes
        d = config.d_model
        self.l1 = nn.Embedding(v1, d)
        self.l2 = nn.Embedding(v2, d)
        self.l3 = nn.Embedding(v3, d)
        self.position = nn.Embedding(config.max_seq_length, d)
        self.token_type = nn.Embedding(config.num_token_types, d)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(d)
        self.pool_query = nn.Parameter(torch.zeros(d))

    def forward(
        self,
        l1: torch.Tensor,
        l2: torch.Tensor,
        l3: torch.Tensor,
        positions: torch.Tensor,
        token_types: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """All inputs (B, T); `mask` is 1.0 for real events, 0.0 for padding. Returns (B, D)."""
        x = self.l1(l1) + self.l2(l2) + self.l3(l3) + self.position(positions)
        x = x + self.token_type(token_types)
        bias = (1.0 - mask) * MASK_BIAS
        key_bias = bias[:, None, None, :]
        for layer in self.layers:
            x = layer(x, key_bias)
        x = self.norm(x)
        pool_logits = x @ self.pool_query / math.sqrt(x.shape[-1]) + bias
        weights = torch.softmax(pool_logits, dim=-1)
        return (weights.unsqueeze(-1) * x).sum(dim=1)
