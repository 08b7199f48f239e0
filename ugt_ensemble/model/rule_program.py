"""A model step that honours the business rules in its search, as a `torch.export` program.

Such a step (a module with `rule_step()`, e.g. a `ConstrainedRecommender`) is exported as its rule step: the six
encoder tensors, the four rule tensors and the eight table tensors (`runtime.contract`) are inputs.
`rule_export_inputs` gives the sample inputs and dynamic axes it is exported with, to a .pt2
(`sources.save_step_model`) and to ONNX (`export.onnx_export`) alike. `RuleProgramStep` runs a loaded program of
that form as a six-input step without rules over a catalog's constraint data, so every eager check (contract,
limits, parity with ONNX) runs it as it runs any other step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import RULE_NAMES, TABLE_NAMES
from ugt_ensemble.runtime.rules import default_rules


def rule_export_inputs(
    model: nn.Module, encoder: tuple[torch.Tensor, ...], dynamic: tuple[dict, ...], batch: Dim
) -> tuple[tuple[torch.Tensor, ...], tuple[dict | None, ...]]:
    """The sample inputs of `model.rule_step()` (the `encoder` tensors, then the rule and table tensors, every
    dynamic axis at least 2 so that none is specialised to 1) and the dynamic axes of all eighteen (the encoder
    tensors' `dynamic`; the rule tensors share `batch`)."""
    rows = len(encoder[0])
    rules = model.default_rule_feed(rows)  # type: ignore[operator]
    for name in RULE_NAMES[2:]:  # two padding entries per row
        rules[name] = np.concatenate([rules[name], rules[name]], axis=1)
    tables = model.table_feed()  # type: ignore[operator]
    for name in TABLE_NAMES[-2:]:  # two item sets
        tables[name] = np.concatenate([tables[name], tables[name]])
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in (*rules.values(), *tables.values()))
    pairs, items, sets = Dim("pairs", min=1), Dim("items", min=1), Dim("sets", min=1)
    axes = (
        {0: batch}, {0: batch}, {0: batch, 1: Dim("dead_pairs", min=1)}, {0: batch, 1: Dim("removed_items", min=1)},
        None, None, {0: pairs}, {0: pairs}, {0: pairs}, {0: items}, {0: sets, 1: pairs}, {0: sets, 1: items},
    )  # fmt: skip
    return (*encoder, *tensors), (*dynamic, *axes)


class RuleProgramStep(nn.Module):
    """A program taking the eighteen rule-step inputs as a step taking the six encoder tensors: every row without
    a rule (`default_rules`), over `data`'s tables (the catalog it is built with, padded to its fan-out caps)."""

    def __init__(self, program: nn.Module, data: ConstraintData) -> None:
        super().__init__()
        self.program = program
        self.data = data
        for name, values in data.tables().items():
            self.register_buffer(name, torch.from_numpy(np.array(values)), persistent=False)

    def forward(
        self,
        encoder_l1_ids: torch.Tensor,
        encoder_l2_ids: torch.Tensor,
        encoder_l3_ids: torch.Tensor,
        encoder_positions: torch.Tensor,
        encoder_token_types: torch.Tensor,
        encoder_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rules = default_rules(self.data, int(encoder_l1_ids.shape[0]))
        return self.program(
            encoder_l1_ids, encoder_l2_ids, encoder_l3_ids, encoder_positions, encoder_token_types, encoder_mask,
            *(torch.from_numpy(np.array(rules[name])).to(encoder_l1_ids.device) for name in RULE_NAMES),
            *(getattr(self, name) for name in TABLE_NAMES),
        )  # fmt: skip
