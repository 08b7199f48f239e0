"""The tensors of a search with business rules (`runtime.contract.RULE_INPUTS`, `TABLE_INPUTS`) and the model
step that takes them as inputs (what `export_onnx` exports for a `ConstrainedRecommender`).

`SearchRules` are per request row: the base item set, the level-1 codes with an eligible item, the (l1, slot)
pairs left without one and the (pair, slot) items removed. `SearchTables` are the catalog's padded prefix
tables and item-set masks (`PrefixTables.padded`), the same for every row.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np
import torch
from torch import nn

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.contract import RULE_NAMES, TABLE_NAMES


class SearchRules(NamedTuple):
    """The four rule tensors, in contract order: set (B, 1), l1_valid (B, V1), dead_pairs (B, E2, 2),
    removed_items (B, E3, 2)."""

    set: torch.Tensor
    l1_valid: torch.Tensor
    dead_pairs: torch.Tensor
    removed_items: torch.Tensor

    @classmethod
    def from_feed(cls, feed: Mapping[str, np.ndarray | torch.Tensor]) -> SearchRules:
        """From arrays keyed by the contract's names (`RULE_NAMES`)."""
        return cls(*(torch.as_tensor(feed[name]) for name in RULE_NAMES))


class SearchTables(NamedTuple):
    """The eight table tensors, in contract order (`runtime.contract.TABLE_INPUTS`)."""

    l2_offset: torch.Tensor
    l2_count: torch.Tensor
    pair_l2: torch.Tensor
    l3_offset: torch.Tensor
    l3_count: torch.Tensor
    item_l3: torch.Tensor
    set_pairs: torch.Tensor
    set_items: torch.Tensor

    @classmethod
    def from_feed(cls, feed: Mapping[str, np.ndarray | torch.Tensor]) -> SearchTables:
        """From arrays keyed by the contract's names (`TABLE_NAMES`)."""
        return cls(*(torch.as_tensor(feed[name]) for name in TABLE_NAMES))


class RuleStep(nn.Module):
    """A `ConstrainedRecommender` as a model step that takes the rules and the tables as inputs:
    (six encoder tensors, four rule tensors, eight table tensors), positionally in contract order
    (`ENCODER_INPUTS` + `RULE_NAMES` + `TABLE_NAMES`) -> (recommendations, scores)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        # The model's modules and parameters under their own names (module scopes "encoder", "scorer" in the
        # export, as the model's own), without its table buffers: the tables are inputs here.
        object.__setattr__(self, "model", model)
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            if name not in TABLE_NAMES:
                self.register_buffer(name, buffer)

    def forward(
        self,
        encoder_l1_ids: torch.Tensor,
        encoder_l2_ids: torch.Tensor,
        encoder_l3_ids: torch.Tensor,
        encoder_positions: torch.Tensor,
        encoder_token_types: torch.Tensor,
        encoder_mask: torch.Tensor,
        rule_set: torch.Tensor,
        rule_l1_valid: torch.Tensor,
        rule_dead_pairs: torch.Tensor,
        rule_removed_items: torch.Tensor,
        table_l2_offset: torch.Tensor,
        table_l2_count: torch.Tensor,
        table_pair_l2: torch.Tensor,
        table_l3_offset: torch.Tensor,
        table_l3_count: torch.Tensor,
        table_item_l3: torch.Tensor,
        table_set_pairs: torch.Tensor,
        table_set_items: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        user = self.model.encoder(
            encoder_l1_ids, encoder_l2_ids, encoder_l3_ids, encoder_positions, encoder_token_types, encoder_mask
        )
        rules = SearchRules(rule_set, rule_l1_valid, rule_dead_pairs, rule_removed_items)
        tables = SearchTables(
            table_l2_offset, table_l2_count, table_pair_l2, table_l3_offset, table_l3_count, table_item_l3,
            table_set_pairs, table_set_items,
        )  # fmt: skip
        return self.model.decode(user, rules, tables)


def check_fanout(tables: SearchTables, fanout_caps: tuple[int, int]) -> None:
    """ConfigError unless every fan-out of `tables` fits the caps (a wider one needs a new export)."""
    for level, (count, cap) in enumerate(zip((tables.l2_count, tables.l3_count), fanout_caps), start=2):
        widest = int(count.max()) if count.numel() else 0
        if widest > cap:
            raise ConfigError(
                f"the catalog's widest level-{level} fan-out is {widest}, above the model's cap C{level} = {cap}: "
                "export the model again on this catalog (or with larger `fanout_caps`)"
            )


def check_caps(caps: tuple[int, int], widest: tuple[int, int]) -> tuple[int, int]:
    """`caps` as ints; ConfigError when one is below the build catalog's widest fan-out."""
    caps = (int(caps[0]), int(caps[1]))
    for level, (cap, width) in enumerate(zip(caps, widest), start=2):
        if cap < max(width, 1):
            raise ConfigError(
                f"`fanout_caps` C{level} = {cap} is below the catalog's widest level-{level} fan-out ({width}): "
                f"give at least {max(width, 1)}"
            )
    return caps
