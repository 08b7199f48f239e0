"""`ugt_runtime.rules`: the rule tensors of a batch against a brute-force oracle over plain Python sets, and
the graph's masking (rules/README's formulas, in numpy) against the prefix tree of the eligible items."""

from __future__ import annotations

import numpy as np
import pytest

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import RULE_DEAD_PAIRS, RULE_L1_VALID, RULE_NAMES, RULE_REMOVED_ITEMS, RULE_SET
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.rule_request import NO_RULES, RuleRequest
from ugt_ensemble.runtime.rules import default_rules, eligible_mask, pack_rules

SIZES = (8, 16, 32)


def uneven_catalog(rng: np.random.Generator, n: int = 600) -> tuple[CatalogIndex, dict[str, np.ndarray]]:
    """Items crowded below a few level-1 codes (wide fan-outs there, single children elsewhere), ids scattered."""
    l1 = np.minimum(rng.geometric(0.35, size=4 * n) - 1, SIZES[0] - 1)
    l2 = np.minimum(rng.geometric(0.2, size=4 * n) - 1, SIZES[1] - 1)
    keys = np.unique((l1 * SIZES[1] + l2) * SIZES[2] + rng.integers(0, SIZES[2], size=4 * n))[:n]
    rng.shuffle(keys)
    codes = np.stack([keys // (SIZES[1] * SIZES[2]), keys // SIZES[2] % SIZES[1], keys % SIZES[2]], axis=1)
    ids = rng.choice(10 * n, size=len(keys), replace=False).astype(np.int64)
    index = CatalogIndex(ids, codes, SIZES)
    sets = {
        "half": rng.random(len(index)) < 0.5,
        "most": rng.random(len(index)) < 0.9,
        "few": rng.random(len(index)) < 0.05,
        "none": np.zeros(len(index), dtype=bool),
        "one_l1": index.codes[:, 0] == index.codes[0, 0],
    }
    return index, sets


class Oracle:
    """The spec's semantics over plain Python sets of (l1, l2, l3) triples."""

    def __init__(self, index: CatalogIndex, sets: dict[str, np.ndarray]) -> None:
        self.code_of = {int(i): tuple(map(int, c)) for i, c in zip(index.item_ids, index.codes)}
        self.sets = {name: {self.code_of[int(i)] for i in index.item_ids[mask]} for name, mask in sets.items()}
        triples = sorted(self.code_of.values())
        self.item_index = {t: k for k, t in enumerate(triples)}
        pairs = sorted({t[:2] for t in triples})
        self.pair_index = {p: k for k, p in enumerate(pairs)}
        self.slot2 = {p: sorted(q[1] for q in pairs if q[0] == p[0]).index(p[1]) for p in pairs}
        self.slot3 = {t: sorted(u[2] for u in triples if u[:2] == t[:2]).index(t[2]) for t in triples}
        self.all = set(triples)
        self.names = sorted(sets)

    def row(self, rule: RuleRequest, history: np.ndarray, default_history: bool) -> dict:
        names = list(dict.fromkeys(rule.sets))
        base_name = min(names, key=lambda n: (len(self.sets[n]), self.names.index(n))) if names else None
        base = self.sets[base_name] if base_name else self.all
        eligible = set.intersection(base, *(self.sets[n] for n in names))
        removed_ids = set(map(int, rule.exclude))
        if default_history if rule.exclude_history is None else rule.exclude_history:
            removed_ids |= set(map(int, history))
        eligible -= {self.code_of[i] for i in removed_ids if i in self.code_of}
        removed = base - eligible
        dead = {p for p in {t[:2] for t in base} if not any(t[:2] == p for t in eligible)}
        return {
            "set": 0 if base_name is None else self.names.index(base_name) + 1,
            "l1": {t[0] for t in eligible},
            "dead": {(p[0], self.slot2[p]) for p in dead},
            "removed": {(self.pair_index[t[:2]], self.slot3[t]) for t in removed},
            "eligible": eligible,
        }


def _entries(tensor: np.ndarray, row: int) -> set[tuple[int, int]]:
    real = tensor[row][tensor[row, :, 0] >= 0]
    assert (tensor[row][tensor[row, :, 0] < 0] == [-1, 0]).all(), "padding is (-1, 0)"
    return {tuple(map(int, e)) for e in real}


def _random_rule(rng: np.random.Generator, index: CatalogIndex, names: list[str]) -> tuple[RuleRequest, np.ndarray]:
    ids = index.item_ids
    strangers = rng.integers(-5, 20 * len(ids), size=3)  # mostly ids outside the catalog
    history = np.concatenate([rng.choice(ids, size=rng.integers(0, 40)), strangers, ids[:2], ids[:2]])
    exclude = np.concatenate([rng.choice(ids, size=rng.integers(0, 30)), strangers[:1]]) if rng.random() < 0.6 else None
    sets = tuple(rng.choice(names, size=rng.integers(1, 4))) if rng.random() < 0.6 else ()
    flag = rng.choice([None, True, False])
    rule = RuleRequest(exclude_history=flag, sets=tuple(map(str, sets)))
    if exclude is not None:
        rule = RuleRequest(exclude_history=flag, exclude=exclude, sets=rule.sets)
    return rule, history


@pytest.mark.parametrize("seed", range(6))
def test_rule_tensors_equal_the_oracle(seed):
    rng = np.random.default_rng(seed)
    index, sets = uneven_catalog(rng)
    data, oracle = ConstraintData.build(index, sets), Oracle(index, sets)
    names = sorted(sets)
    batch = [_random_rule(rng, index, names) for _ in range(12)] + [(NO_RULES, index.item_ids[:3])]
    l1_counts = np.bincount(index.codes[:, 0], minlength=SIZES[0])
    sparse = index.item_ids[index.codes[:, 0] == np.flatnonzero(l1_counts)[np.argmin(l1_counts[l1_counts > 0])]]
    batch.append((RuleRequest(exclude=sparse, sets=("most", "most")), sparse[:1]))  # a whole l1 code removed
    default_history = bool(seed % 2)
    tensors = pack_rules([r for r, _ in batch], [h for _, h in batch], data, default_history)
    v1 = SIZES[0]
    assert tensors[RULE_SET].shape == (len(batch), 1) and tensors[RULE_L1_VALID].shape == (len(batch), v1)
    widths = {RULE_DEAD_PAIRS: 0, RULE_REMOVED_ITEMS: 0}
    for row, (rule, history) in enumerate(batch):
        want = oracle.row(rule, history, default_history)
        assert int(tensors[RULE_SET][row, 0]) == want["set"]
        assert set(np.flatnonzero(tensors[RULE_L1_VALID][row]).tolist()) == want["l1"]
        dead, removed = _entries(tensors[RULE_DEAD_PAIRS], row), _entries(tensors[RULE_REMOVED_ITEMS], row)
        assert dead == want["dead"] and removed == want["removed"]
        assert len(dead) == (tensors[RULE_DEAD_PAIRS][row, :, 0] >= 0).sum(), "no entry twice"
        assert len(removed) == (tensors[RULE_REMOVED_ITEMS][row, :, 0] >= 0).sum(), "no entry twice"
        widths[RULE_DEAD_PAIRS] = max(widths[RULE_DEAD_PAIRS], len(dead))
        widths[RULE_REMOVED_ITEMS] = max(widths[RULE_REMOVED_ITEMS], len(removed))
        _check_graph_masks(tensors, row, data, index, want["eligible"])
    assert not tensors[RULE_L1_VALID][-1][index.codes[index.item_ids == sparse[0]][0, 0]]
    for name, width in widths.items():
        assert tensors[name].shape == (len(batch), max(1, width), 2)


def _check_graph_masks(tensors: dict, row: int, data: ConstraintData, index: CatalogIndex, eligible: set) -> None:
    """The graph's per-level validity for this row equals the prefix tree of the eligible items."""
    t = data.tables()
    s = int(tensors[RULE_SET][row, 0])
    (c2, c3), n_pad, p_pad = data.fanout_caps, t["table_item_l3"].shape[0], t["table_pair_l2"].shape[0]
    dead = tensors[RULE_DEAD_PAIRS][row]
    removed = tensors[RULE_REMOVED_ITEMS][row]
    got = set()
    valid_pairs = set()
    for l1 in np.flatnonzero(tensors[RULE_L1_VALID][row]):
        for slot in range(c2):
            child = t["table_l2_offset"][l1] + slot
            ok = slot < t["table_l2_count"][l1] and t["table_set_pairs"].reshape(-1)[s * p_pad + child]
            ok = ok and not ((dead[:, 0] == l1) & (dead[:, 1] == slot)).any()
            if not ok:
                continue
            valid_pairs.add((int(l1), int(t["table_pair_l2"][child])))
            for slot3 in range(c3):
                item = t["table_l3_offset"][child] + slot3
                ok3 = slot3 < t["table_l3_count"][child] and t["table_set_items"].reshape(-1)[s * n_pad + item]
                if ok3 and not ((removed[:, 0] == child) & (removed[:, 1] == slot3)).any():
                    got.add((int(l1), int(t["table_pair_l2"][child]), int(t["table_item_l3"][item])))
    assert got == eligible
    assert valid_pairs == {e[:2] for e in eligible}
    if eligible:
        reference = PrefixTables.from_codes(np.array(sorted(eligible)), SIZES)
        assert set(np.flatnonzero(reference.l1_valid).tolist()) == set(
            np.flatnonzero(tensors[RULE_L1_VALID][row]).tolist()
        )


def test_eligible_mask_equals_the_oracle():
    rng = np.random.default_rng(7)
    index, sets = uneven_catalog(rng)
    data, oracle = ConstraintData.build(index, sets), Oracle(index, sets)
    batch = [_random_rule(rng, index, sorted(sets)) for _ in range(10)]
    tensors = pack_rules([r for r, _ in batch], [h for _, h in batch], data, True)
    items = rng.integers(-1, len(index), size=(len(batch), 40))
    mask = eligible_mask(items, tensors, data)
    triples = sorted(oracle.all)
    for row, (rule, history) in enumerate(batch):
        eligible = oracle.row(rule, history, True)["eligible"]
        assert mask[row].tolist() == [i >= 0 and triples[i] in eligible for i in items[row]]
    codes = np.where(items[..., None] >= 0, np.array(triples + [(0, 0, 0)])[items], -1)
    codes[0, 0] = (SIZES[0] - 1, SIZES[1] - 1, SIZES[2] - 1)  # in range, most likely no item
    expected = mask.copy()
    expected[0, 0] = index.items_of(codes[0, 0]) != -1 and expected[0, 0]
    assert eligible_mask(codes, tensors, data).tolist() == expected.tolist()


def test_fast_path_equals_the_general_path():
    rng = np.random.default_rng(3)
    index, sets = uneven_catalog(rng)
    data = ConstraintData.build(index, sets)
    plain = pack_rules([NO_RULES] * 5, [index.item_ids[:4]] * 5, data, False)
    mixed = pack_rules([NO_RULES] * 5 + [RuleRequest(sets=("half",))], [index.item_ids[:4]] * 6, data, False)
    assert plain[RULE_SET].tolist() == mixed[RULE_SET][:5].tolist() == [[0]] * 5
    assert plain[RULE_L1_VALID].tolist() == mixed[RULE_L1_VALID][:5].tolist()
    assert plain[RULE_L1_VALID][0].tolist() == (data.tables()["table_l2_count"] > 0).tolist()
    for name in (RULE_DEAD_PAIRS, RULE_REMOVED_ITEMS):
        assert plain[name].tolist() == [[[-1, 0]]] * 5
        assert (mixed[name][:5] == [-1, 0]).all()
    assert all(not value.flags.writeable for value in plain.values()), "the cached tensors are read-only"
    again = pack_rules([NO_RULES] * 200, [index.item_ids[:1]] * 200, data, False)
    assert again[RULE_SET].shape == (200, 1) and again[RULE_L1_VALID].shape == (200, SIZES[0])
    assert {n: v.shape for n, v in default_rules(data, 0).items()} == {
        RULE_SET: (0, 1),
        RULE_L1_VALID: (0, SIZES[0]),
        RULE_DEAD_PAIRS: (0, 1, 2),
        RULE_REMOVED_ITEMS: (0, 1, 2),
    }
    assert sorted(plain) == sorted(RULE_NAMES)


def test_history_only_counts_with_exclude_history():
    rng = np.random.default_rng(5)
    index, sets = uneven_catalog(rng)
    data = ConstraintData.build(index, sets)
    history = index.item_ids[:10]
    off = pack_rules([RuleRequest(exclude_history=False, exclude=index.item_ids[:1])], [history], data, True)
    on = pack_rules([RuleRequest(exclude=index.item_ids[:1])], [history], data, True)
    assert (off[RULE_REMOVED_ITEMS][0, :, 0] >= 0).sum() == 1
    assert (on[RULE_REMOVED_ITEMS][0, :, 0] >= 0).sum() == 10


def test_a_row_with_an_unknown_set_is_refused():
    rng = np.random.default_rng(2)
    index, sets = uneven_catalog(rng)
    data = ConstraintData.build(index, sets)
    with pytest.raises(RequestError, match='unknown item set "nope"; known sets: few, half, most, none, one_l1'):
        pack_rules([NO_RULES, RuleRequest(sets=("half", "nope"))], [index.item_ids[:1]] * 2, data, False)
