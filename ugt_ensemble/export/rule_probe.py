"""Whether a model step that declares the rule inputs honours them: the rule probe of `build`.

Postprocess trusts such a model (it no longer re-checks every slot against the request's rules), so `build` checks
it once instead. Over seeded histories it sends three kinds of rule rows, packed as preprocess packs them: the
model's own top answers excluded, the history excluded (exclude-history), and each named item set (at most four)
as the base set. Every non-empty slot it returns must be an eligible catalog item (`rules.eligible_mask`), and no
row may return an item twice. A model that fails is refused, naming how many slots broke which rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ugt_ensemble.errors import ExportError
from ugt_ensemble.export.probe import sample_histories
from ugt_ensemble.model.contract import Runner
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import PAD_ITEM_ID
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import eligible_mask, pack_rules

#: Rows of each rule kind, and the model's top answers each `exclude` row removes.
ROWS, EXCLUDED = 16, 10
MAX_SETS = 4


@dataclass(frozen=True)
class RuleCompliance:
    """Slots checked per rule kind and those that broke it (ineligible or repeated)."""

    checked: dict[str, int]
    broken: dict[str, int]

    @property
    def ok(self) -> bool:
        return not any(self.broken.values())

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        kinds = ", ".join(f"{kind} {self.broken[kind]}/{self.checked[kind]}" for kind in self.checked)
        return f"rule probe: slots breaking the rule / slots returned: {kinds}"


def probe_rule_compliance(run: Runner, data: ConstraintData, packing: PackingConfig, seed: int = 0) -> RuleCompliance:
    """Run `run` on rule rows of seeded histories and count the returned slots that break their row's rules."""
    histories = sample_histories(data.index, packing, ROWS, np.random.default_rng(seed))
    packed = pack_histories(histories, data.index, packing).tensors
    top, _ = run(packed)
    kinds: dict[str, list[RuleRequest]] = {
        "exclude": [RuleRequest(exclude=_top_items(row, data, EXCLUDED)) for row in top],
        "exclude_history": [RuleRequest(exclude_history=True)] * len(histories),
    }
    for name in data.set_names[:MAX_SETS]:
        kinds[f"set {name}"] = [RuleRequest(sets=(name,))] * len(histories)
    checked, broken = {}, {}
    for kind, rules in kinds.items():
        tensors = pack_rules(rules, [h.item_ids for h in histories], data, False)
        codes, _ = run({**packed, **tensors})
        checked[kind], broken[kind] = _broken(codes, tensors, data)
    return RuleCompliance(checked, broken)


def require_rule_compliance(compliance: RuleCompliance, label: str) -> None:
    """ExportError naming the broken rules when the model does not honour them."""
    if not compliance.ok:
        raise ExportError(
            f"{label} declares the rule inputs but does not honour them ({compliance.describe()}): postprocess trusts "
            "such a model, so it would serve ineligible items. Build it on ugt_ensemble.model.ConstrainedRecommender, "
            "or export it without the rule inputs"
        )


def _top_items(codes: np.ndarray, data: ConstraintData, count: int) -> np.ndarray:
    items = data.index.items_of(codes)
    return items[items != PAD_ITEM_ID][:count]


def _broken(codes: np.ndarray, tensors: dict[str, np.ndarray], data: ConstraintData) -> tuple[int, int]:
    """(non-empty slots, of those the ineligible ones plus the repeats)."""
    returned = ~np.all(codes == PAD_ITEM_ID, axis=-1)
    positions = data.index.item_index_of(codes)
    ineligible = int((returned & ~eligible_mask(positions, tensors, data)).sum())
    repeats = 0
    for row, kept in zip(positions, returned):
        items = row[kept & (row >= 0)]
        repeats += len(items) - len(np.unique(items))
    return int(returned.sum()), ineligible + repeats
