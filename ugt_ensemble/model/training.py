"""Train a model step on the same distribution it is served with: each level's softmax over the
catalog's candidates only (level 1: the catalog's level-1 codes; level 2: the children of the target's
level-1 code; level 3: the children of its (l1, l2) pair), with teacher forcing on the target's prefix.

`ConstrainedRecommender` renormalises each level over exactly these candidates at serving time, so a
model trained with `catalog_loss` is scored as it was trained. Use it as:

    candidates = CatalogCandidates(catalog.prefix_tables())
    loss = catalog_loss(model, candidates, l1, l2, l3, positions, token_types, mask, targets)

where `targets` (N, 3) are the next items' codes (catalog items), and the six encoder tensors are the
histories packed as preprocess packs them (`ugt_ensemble.histories` / `runtime.packing`).
"""

from __future__ import annotations

import torch
from torch import nn

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.model.constrained import ConstrainedRecommender, _masked_log_softmax


class CatalogCandidates(nn.Module):
    """The catalog's candidate set of each level for a batch of target items (tables as buffers, so
    `.to(device)` moves them)."""

    def __init__(self, tables: PrefixTables) -> None:
        super().__init__()
        self.vocab1 = len(tables.l1_valid)
        self.c2, self.c3 = tables.max_l2_children, tables.max_l3_children
        codes = torch.from_numpy(tables.codes())  # sorted by (l1, l2, l3)
        for name in ("l1_valid", "l2_offset", "l2_count", "pair_l2", "l3_offset", "l3_count", "item_l3"):
            values = torch.from_numpy(getattr(tables, name).copy())
            if name in ("pair_l2", "item_l3"):  # padded by one fan-out, as in the decoder
                values = torch.cat([values, torch.zeros(max(self.c2, self.c3), dtype=values.dtype)])
            self.register_buffer(name, values, persistent=False)
        self.register_buffer("item_keys", _keys(codes), persistent=False)

    def level(self, level: int, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For targets (N, 3): candidates (N, 1, C), valid (N, 1, C) and each target's slot (N,) among them.

        ConfigError if a target is not a catalog item.
        """
        targets = targets.long()
        if level == 0:
            candidates = torch.arange(self.vocab1, device=targets.device).expand(len(targets), self.vocab1)
            valid = self.l1_valid.expand(len(targets), -1)
            return candidates.unsqueeze(1), valid.unsqueeze(1), targets[:, 0]
        pair, item = self._locate(targets)
        if level == 1:
            l1 = targets[:, 0]
            start, count, table, width = self.l2_offset[l1], self.l2_count[l1], self.pair_l2, self.c2
            slot = pair - start
        else:
            start, count, table, width = self.l3_offset[pair], self.l3_count[pair], self.item_l3, self.c3
            slot = item - start
        slots = torch.arange(width, device=targets.device)
        candidates = table[start.unsqueeze(-1) + slots]
        valid = slots < count.unsqueeze(-1)
        return candidates.unsqueeze(1), valid.unsqueeze(1), slot

    def _locate(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each target's (l1, l2) pair index and item index in the sorted tables."""
        keys = _keys(targets)
        item = torch.searchsorted(self.item_keys, keys).clamp(max=len(self.item_keys) - 1)
        missing = self.item_keys[item] != keys
        if bool(missing.any()):
            bad = targets[missing][0].tolist()
            raise ConfigError(f"target codes {tuple(bad)} are not a catalog item (train on the catalog's items only)")
        pair_of_item = torch.repeat_interleave(
            torch.arange(len(self.l3_count), device=targets.device), self.l3_count
        )
        return pair_of_item[item], item


def level_log_probs(
    scorer: nn.Module, user: torch.Tensor, targets: torch.Tensor, candidates: CatalogCandidates
) -> torch.Tensor:
    """log p(target code | earlier target codes) at each level, (N, 3), renormalised over the catalog's
    candidates exactly as `ConstrainedRecommender` decodes; `scorer(level, user, prefix, candidates)`."""
    columns = []
    for level in range(3):
        codes, valid, slot = candidates.level(level, targets)
        prefix = targets[:, None, :level].long()
        logp = _masked_log_softmax(scorer(level, user, prefix, codes), valid).squeeze(1)
        columns.append(torch.gather(logp, 1, slot.unsqueeze(1)).squeeze(1))
    return torch.stack(columns, dim=1)


def catalog_loss(
    model: ConstrainedRecommender,
    candidates: CatalogCandidates,
    l1: torch.Tensor,
    l2: torch.Tensor,
    l3: torch.Tensor,
    positions: torch.Tensor,
    token_types: torch.Tensor,
    mask: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """Mean negative log-likelihood of the target items (N, 3) under the served (catalog-restricted)
    distribution: -(log p(l1) + log p(l2 | l1) + log p(l3 | l1, l2)), averaged over the batch."""
    user = model.encoder(l1, l2, l3, positions, token_types, mask)
    return -level_log_probs(model.scorer, user, targets, candidates).sum(dim=1).mean()


def _keys(codes: torch.Tensor) -> torch.Tensor:
    """A sortable int64 key per (l1, l2, l3) triple (codebooks below 2**21 each)."""
    codes = codes.long()
    return (codes[:, 0] << 42) | (codes[:, 1] << 21) | codes[:, 2]
