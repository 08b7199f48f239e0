"""Catalog-constrained beam search over the three semantic-ID levels, unrolled into static steps.

Each level's distribution is renormalised over the children the catalog allows below the beam's
prefix, so a returned code triple is always a catalog item and its score is
log p(l1) + log p(l2 | l1) + log p(l3 | l1, l2) under that constrained distribution.

Levels 2 and 3 score only the gathered candidate rows of the output projection ("gather") unless
the widest fan-out is a large share of the vocabulary, where one dense matmul is cheaper ("dense").
Every op exports to ONNX ops that onnx-tensorrt parses (Gather, GatherElements, TopK, Where, Less).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.model.config import UGTConfig
from ugt_ensemble.model.constraints import PrefixTables

#: Score given to candidates outside the catalog: finite (no NaN in log-sum-exp) and, at three levels
#: summed, still within fp16's range for reduced-precision engines.
INVALID_SCORE = -1e4
_EXACT_FLOAT_INTS = 2**24


class DecoderCell(nn.Module):
    """Advances a beam's state with the embedding of the code it just chose."""

    def __init__(self, d_model: int, ffn_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d_model))

    def forward(self, state: torch.Tensor, code_embedding: torch.Tensor) -> torch.Tensor:
        return state + self.ffn(self.norm(state + code_embedding))


class OutputHead(nn.Module):
    """Output projection of one level, scored densely or on gathered candidate rows."""

    def __init__(self, vocab: int, d_model: int, max_children: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, d_model))
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.dense = max_children * 4 > vocab

    def forward(self, state: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """state (B, K, D), candidates (B, K, C) codes -> logits (B, K, C)."""
        if self.dense:
            logits = state @ self.weight.t() + self.bias
            return torch.gather(logits, -1, candidates)
        rows = self.weight[candidates]
        return (rows @ state.unsqueeze(-1)).squeeze(-1) + self.bias[candidates]


class ConstrainedBeamDecoder(nn.Module):
    """user state (B, D) -> codes (B, R, 3) int64 and scores (B, R) float32, best first.

    Slots without a catalog item (catalogs with fewer than R items) hold codes -1 and score -inf.
    """

    def __init__(self, config: UGTConfig, tables: PrefixTables) -> None:
        super().__init__()
        v1, v2, v3 = config.codebook_sizes
        d = config.d_model
        self.c2 = tables.max_l2_children
        self.c3 = tables.max_l3_children
        self.k1 = min(config.beam_size, v1)
        self.k2 = min(config.beam_size, self.k1 * self.c2)
        self.k3 = min(config.num_recommendations, self.k2 * self.c3)
        self.num_recommendations = config.num_recommendations
        if max(self.k1 * self.c2, self.k2 * self.c3) >= _EXACT_FLOAT_INTS:
            raise ConfigError(f"`beam_size` {config.beam_size} x the catalog's widest fan-out exceeds 2**24 candidates")
        self.norm = nn.LayerNorm(d)
        self.head1 = nn.Linear(d, v1)
        self.head2 = OutputHead(v2, d, self.c2)
        self.head3 = OutputHead(v3, d, self.c3)
        self.embed1 = nn.Embedding(v1, d)
        self.embed2 = nn.Embedding(v2, d)
        self.cell1 = DecoderCell(d, config.ffn_dim)
        self.cell2 = DecoderCell(d, config.ffn_dim)
        for name in ("l1_valid", "l2_offset", "l2_count", "l3_offset", "l3_count"):
            self.register_buffer(name, torch.from_numpy(getattr(tables, name).copy()), persistent=False)
        # Child tables padded by one fan-out width, so `offset + slot` never runs past the end (no clamp:
        # TensorRT's Clip takes no integers).
        for name, width in (("pair_l2", self.c2), ("item_l3", self.c3)):
            padded = np.concatenate([getattr(tables, name), np.zeros(width, dtype=np.int64)])
            self.register_buffer(name, torch.from_numpy(padded), persistent=False)

    def forward(self, user: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state0 = self.norm(user)
        logp1 = _masked_log_softmax(self.head1(state0), self.l1_valid.unsqueeze(0))
        score1, code1 = torch.topk(logp1, self.k1, dim=-1)
        valid1 = self.l1_valid[code1]
        state1 = self.cell1(state0.unsqueeze(1).expand(-1, self.k1, -1), self.embed1(code1))

        pair, code2, score2, parent, valid2 = self._expand(
            code1,
            score1,
            valid1,
            state1,
            self.l2_offset,
            self.l2_count,
            self.pair_l2,
            self.head2,
            self.c2,
            self.k2,
        )
        code1 = torch.gather(code1, 1, parent)
        state2 = self.cell2(_gather_rows(state1, parent), self.embed2(code2))

        _, code3, score3, parent, valid3 = self._expand(
            pair,
            score2,
            valid2,
            state2,
            self.l3_offset,
            self.l3_count,
            self.item_l3,
            self.head3,
            self.c3,
            self.k3,
        )
        codes = torch.stack((torch.gather(code1, 1, parent), torch.gather(code2, 1, parent), code3), dim=-1)
        return self._finalise(codes, score3, valid3)

    @staticmethod
    def _expand(
        prefix: torch.Tensor,
        score: torch.Tensor,
        valid: torch.Tensor,
        state: torch.Tensor,
        offset: torch.Tensor,
        count: torch.Tensor,
        child_codes: torch.Tensor,
        head: OutputHead,
        width: int,
        keep: int,
    ) -> tuple[torch.Tensor, ...]:
        """Score every catalog child of every beam and keep the best `keep` (prefix, child) pairs.

        Returns (child index into `child_codes`, child code, score, parent beam, valid), each (B, keep).
        """
        slots = torch.arange(width, device=prefix.device)
        child = offset[prefix].unsqueeze(-1) + slots
        child_valid = (slots < count[prefix].unsqueeze(-1)) & valid.unsqueeze(-1)
        candidates = child_codes[child]
        logp = _masked_log_softmax(head(state, candidates), child_valid)
        total = torch.where(child_valid, score.unsqueeze(-1) + logp, INVALID_SCORE)
        best, flat = _select(total, keep)
        pick = lambda t: torch.gather(t.flatten(1), 1, flat)  # noqa: E731
        return pick(child), pick(candidates), best, _div(flat, width), pick(child_valid)

    def _finalise(
        self, codes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        codes = torch.where(valid.unsqueeze(-1), codes, -1)
        scores = torch.where(valid, scores, float("-inf"))
        missing = self.num_recommendations - self.k3
        if missing:
            codes = torch.nn.functional.pad(codes, (0, 0, 0, missing), value=-1)
            scores = torch.nn.functional.pad(scores, (0, missing), value=float("-inf"))
        return codes, scores


def _masked_log_softmax(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """log-softmax over the `valid` entries of the last dim; invalid entries get INVALID_SCORE."""
    masked = torch.where(valid, logits, INVALID_SCORE)
    peak = masked.max(dim=-1, keepdim=True).values
    log_norm = peak + torch.log(torch.exp(masked - peak).sum(dim=-1, keepdim=True))
    return torch.where(valid, masked - log_norm, INVALID_SCORE)


def _select(total: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `keep` of (B, K, C) scores -> (values, flat indices into K*C), best first.

    When C > keep, a per-beam top-`keep` first (two-stage top-k: same answer, smaller sort).
    """
    beams, width = total.shape[1], total.shape[2]
    if width <= keep:
        return torch.topk(total.flatten(1), min(keep, beams * width), dim=-1)
    values, child = torch.topk(total, keep, dim=-1)
    best, index = torch.topk(values.flatten(1), keep, dim=-1)
    parent = _div(index, keep)
    return best, parent * width + torch.gather(child.flatten(1), 1, index)


def _div(index: torch.Tensor, divisor: int) -> torch.Tensor:
    """index // divisor for non-negative ints. Floor division exports with sign fix-ups that compare
    booleans (TensorRT refuses them); truncating division exports through float32, exact for the
    < 2**24 candidate indices the constructor guarantees."""
    return torch.div(index, divisor, rounding_mode="trunc")


def _gather_rows(state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """state (B, K, D), index (B, K') -> (B, K', D)."""
    return torch.gather(state, 1, index.unsqueeze(-1).expand(-1, -1, state.shape[-1]))
