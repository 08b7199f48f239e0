"""Catalog-constrained beam search over three semantic-ID levels: a building block for any recommender.

`ConstrainedRecommender(encoder, scorer, tables)` is a model step (see README, "The step contract"):
- `encoder(l1, l2, l3, positions, token_types, mask)` maps the six encoder tensors to one user state
  per history (any tensor with the batch first);
- `scorer(level, user, prefix, candidates)` gives logits (B, K, C) for candidate codes (B, K, C) of
  `level` (0, 1, 2) after the codes `prefix` (B, K, level) chosen at the earlier levels; at level 0
  the candidates are all codes 0..V1-1 in order, at levels 1 and 2 they are the catalog's children of
  each beam's prefix (`PerLevelScorer` wraps three independent modules);
- each level's distribution is renormalised over the children the catalog allows, so every returned
  triple is a catalog item, and its score is log p(l1) + log p(l2 | l1) + log p(l3 | l1, l2);
- business rules (`SearchRules`: an item set, excluded items) narrow each level to the children with an
  eligible item below, over tables that may come at run time (`SearchTables`, static widths `fanout_caps`);
- the three steps are unrolled into static shapes with ops that TensorRT's ONNX parser takes
  (Gather, GatherElements, ScatterElements, TopK with sorted output, Where, Less): no Loop, no Scan.
Slots without a catalog item (catalogs smaller than K) hold codes -1 and score -inf.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.model.rule_step import RuleStep, SearchRules, SearchTables, check_caps, check_fanout
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, TABLE_NAMES, default_fanout_caps
from ugt_ensemble.runtime.rules import no_rule_tensors

#: Score given to candidates outside the catalog: finite (no NaN in log-sum-exp) and, at three levels
#: summed, still within fp16's range for reduced-precision engines.
INVALID_SCORE = -1e4
_EXACT_FLOAT_INTS = 2**24


class PerLevelScorer(nn.Module):
    """A scorer made of three modules, one per level, each called as `module(user, prefix, candidates)`."""

    def __init__(self, level1: nn.Module, level2: nn.Module, level3: nn.Module) -> None:
        super().__init__()
        self.levels = nn.ModuleList([level1, level2, level3])

    def forward(self, level: int, user: torch.Tensor, prefix: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return self.levels[level](user, prefix, candidates)


class CandidateHead(nn.Module):
    """An output projection (vocab x d) scored on the candidates' rows only, or densely when the widest
    fan-out is a large share of the vocabulary (then one matmul is cheaper than the gather).

    Call it as `head(state, candidates)` with beam states (B, K, D), or as a `PerLevelScorer` level,
    `head(user, prefix, candidates)`: the user states (B, D) serve every beam and the prefix is not read
    (wrap the head in a module of your own for a level that depends on the codes chosen before).
    """

    def __init__(self, vocab: int, d_model: int, max_candidates: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, d_model))
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.dense = max_candidates * 4 > vocab
        nn.init.normal_(self.weight, std=d_model**-0.5)  # unit-scale logits for unit-scale states

    def forward(self, state: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        """(state (B, K, D) or (B, D), candidates (B, K, C)) or (user, prefix, candidates) -> logits (B, K, C)."""
        if len(rest) not in (1, 2):
            raise TypeError(f"CandidateHead takes (state, candidates) or (user, prefix, candidates): {len(rest) + 1}")
        candidates = rest[-1]
        if state.dim() == 2:
            state = expand_beams(state, candidates.shape[1])
        if self.dense:
            logits = state @ self.weight.t() + self.bias
            return torch.gather(logits, -1, candidates)
        rows = self.weight[candidates]
        return (rows @ state.unsqueeze(-1)).squeeze(-1) + self.bias[candidates]


class ConstrainedRecommender(nn.Module):
    """(six encoder tensors, each (B, T)) -> recommendations (B, K, 3) int64, scores (B, K) float32.

    `search` also takes business rules (`SearchRules`, per row) and runtime tables (`SearchTables`): each level
    is then renormalised over the children with an eligible item below, and `rule_step()` is the module that
    takes both as inputs (the exported form). `fanout_caps` (C2, C3) are the static widths of levels 2 and 3:
    any catalog whose fan-outs fit them can be searched without a new export.
    """

    def __init__(
        self,
        encoder: nn.Module,
        scorer: nn.Module,
        tables: PrefixTables,
        beam_size: int = 50,
        num_recommendations: int = 50,
        fanout_caps: tuple[int, int] | None = None,
        codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES,
    ) -> None:
        super().__init__()
        if beam_size < num_recommendations:
            raise ConfigError(f"`beam_size` ({beam_size}) must be >= `num_recommendations` ({num_recommendations})")
        self.encoder = encoder
        self.scorer = scorer
        self.tables = tables  # numpy, kept for exporters and tests (the catalog can be rebuilt from it)
        self.vocab1 = len(tables.l1_valid)
        widest = (tables.max_l2_children, tables.max_l3_children)
        self.fanout_caps = check_caps(fanout_caps or default_fanout_caps(*widest, codebook_sizes), widest)
        self.c2, self.c3 = self.fanout_caps
        self.k1 = min(beam_size, self.vocab1)
        self.k2 = min(beam_size, self.k1 * self.c2)
        self.k3 = min(num_recommendations, self.k2 * self.c3)
        self.num_recommendations = num_recommendations
        if max(self.k1 * self.c2, self.k2 * self.c3) >= _EXACT_FLOAT_INTS:
            raise ConfigError(f"`beam_size` {beam_size} x the fan-out caps {self.fanout_caps} exceeds 2**24 candidates")
        # The tables padded by one cap (`offset + slot` never runs past the end; no clamp: TensorRT's Clip
        # takes no integers), with one item set: the whole catalog.
        for name, values in tables.padded(self.fanout_caps).items():
            self.register_buffer(name, torch.from_numpy(values), persistent=False)

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
            encoder_l1_ids, encoder_l2_ids, encoder_l3_ids, encoder_positions, encoder_token_types, encoder_mask
        )
        return self.decode(user)

    def search(
        self, *encoder_inputs: torch.Tensor, rules: SearchRules | None = None, tables: SearchTables | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The six encoder tensors -> (codes, scores) with `rules` (None: none) over `tables` (None: the
        module's own). ConfigError when `tables` fan out wider than the caps."""
        if tables is not None:
            check_fanout(tables, self.fanout_caps)
        return self.decode(self.encoder(*encoder_inputs), rules, tables)

    def rule_step(self) -> RuleStep:
        """This module as a step taking (encoder, rule, table tensors) positionally, in contract order."""
        return RuleStep(self)

    def default_rule_feed(self, batch: int) -> dict[str, np.ndarray]:
        """The rule tensors of `batch` rows without a rule, by contract name."""
        return no_rule_tensors(self.tables.l2_count > 0, batch)

    def table_feed(self) -> dict[str, np.ndarray]:
        """This module's own padded tables (one item set: the whole catalog), by contract name."""
        return self.tables.padded(self.fanout_caps)

    def own_tables(self) -> SearchTables:
        """The module's table buffers (on its device)."""
        return SearchTables(*(getattr(self, name) for name in TABLE_NAMES))

    def decode(
        self, user: torch.Tensor, rules: SearchRules | None = None, tables: SearchTables | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beam search from the user states (B, ...) to codes (B, K, 3) and scores (B, K), best first."""
        t = tables if tables is not None else self.own_tables()
        batch = user.shape[0]
        codes = torch.arange(self.vocab1, device=user.device).expand(batch, 1, self.vocab1)
        logits = self.scorer(0, user, codes[..., :0], codes).squeeze(1)
        l1_valid = t.l2_count > 0
        l1_valid = l1_valid.unsqueeze(0) if rules is None else rules.l1_valid & l1_valid
        logp1 = _masked_log_softmax(logits, l1_valid)
        score1, code1 = torch.topk(logp1, self.k1, dim=-1)
        valid1 = torch.gather(l1_valid.expand(batch, -1), 1, code1)

        child, valid = _children(code1, valid1, t.l2_offset, t.l2_count, self.c2)
        if rules is not None:
            valid = valid & _set_mask(t.set_pairs, rules.set, child)
            valid = valid & ~_listed(rules.dead_pairs, code1, valid1, self.c2)
        pair, code2, score2, parent, valid2 = self._keep(1, user, code1.unsqueeze(-1), child, valid, t.pair_l2, score1)
        prefix2 = torch.stack((torch.gather(code1, 1, parent), code2), dim=-1)

        child, valid = _children(pair, valid2, t.l3_offset, t.l3_count, self.c3)
        if rules is not None:
            valid = valid & _set_mask(t.set_items, rules.set, child)
            valid = valid & ~_listed(rules.removed_items, pair, valid2, self.c3)
        _, code3, score3, parent, valid3 = self._keep(2, user, prefix2, child, valid, t.item_l3, score2)
        chosen = _gather_rows(prefix2, parent)
        return self._finalise(torch.cat((chosen, code3.unsqueeze(-1)), dim=-1), score3, valid3)

    def _keep(
        self,
        level: int,
        user: torch.Tensor,
        prefix: torch.Tensor,
        child: torch.Tensor,
        child_valid: torch.Tensor,
        child_codes: torch.Tensor,
        score: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Score the children (B, K, width) of every beam, renormalised over the valid ones, and keep the best
        (beam, child) pairs. Returns (child index into `child_codes`, child code, score, parent beam, valid),
        each (B, keep)."""
        width, keep = child.shape[-1], (self.k2 if level == 1 else self.k3)
        candidates = child_codes[child]
        logp = _masked_log_softmax(self.scorer(level, user, prefix, candidates), child_valid)
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


def _children(
    parent: torch.Tensor, valid: torch.Tensor, offset: torch.Tensor, count: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The child indices (B, K, width) of each beam's CSR run (`parent` (B, K) indexes `offset`/`count`), and
    which of them exist below a valid beam."""
    slots = torch.arange(width, device=parent.device)
    child = offset[parent].unsqueeze(-1) + slots
    return child, (slots < count[parent].unsqueeze(-1)) & valid.unsqueeze(-1)


def _set_mask(members: torch.Tensor, item_set: torch.Tensor, child: torch.Tensor) -> torch.Tensor:
    """members (S, N') bool, item_set (B, 1), child (B, K, C) -> whether each child is in its row's set."""
    flat = item_set.unsqueeze(-1) * members.shape[1] + child
    return members.flatten()[flat]


def _listed(entries: torch.Tensor, parent: torch.Tensor, live: torch.Tensor, width: int) -> torch.Tensor:
    """entries (B, E, 2) of (parent, slot), parent and live (B, K) -> (B, K, width) bool: slot listed under the beam's
    parent. Live beams hold distinct parents (distinct level-1 codes, or distinct children of them), so each entry
    belongs to at most one beam: it is matched to its beam once, then marks one cell, and the work beside the match
    is per entry, not per (beam, entry). Unmatched entries (padding, other parents, out-of-range slots, beams that
    are not live) land in a spare cell."""
    batch, beams = parent.shape
    slot = entries[..., 1]
    owner = torch.where((slot >= 0) & (slot < width), entries[..., 0], -2)  # padding (-1) and bad slots match nothing
    key = torch.where(live, parent, -3)
    match = (owner.unsqueeze(-1) == key.unsqueeze(1)).to(torch.int32)  # (B, E, K)
    ranks = torch.arange(1, beams + 1, dtype=torch.int32, device=parent.device)
    beam = (match * ranks).amax(dim=-1).to(torch.int64)  # (B, E): 1 + the entry's beam, 0 for none
    spare = beams * (width + 1)
    index = torch.where(beam > 0, (beam - 1) * (width + 1) + slot, spare)
    marks = torch.zeros((batch, spare + 1), dtype=torch.int32, device=parent.device)
    marks = torch.scatter(marks, 1, index, torch.ones_like(index, dtype=torch.int32))
    return marks[:, :spare].reshape(batch, beams, width + 1)[..., :width] > 0


def expand_beams(user: torch.Tensor, beams: int) -> torch.Tensor:
    """user (B, D) -> (B, K, D): the same state for each of K beams (a helper for scorers)."""
    return user.unsqueeze(1).expand(-1, beams, -1)


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
