"""Business rules inside `ConstrainedRecommender`'s beam search, and its export with rule and table inputs.

The reference for a row's rules is the same encoder and scorer on `PrefixTables.from_codes(eligible items)`
without rules: same codes, same scores. The rule tensors come from a brute-force oracle written here.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from ugt_ensemble.catalog import Catalog
from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.constrained import CandidateHead, ConstrainedRecommender, PerLevelScorer, expand_beams
from ugt_ensemble.model.rule_step import SearchRules, SearchTables
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES, TABLE_NAMES

SIZES = (16, 32, 64)
D = 16
K = 50


class BagEncoder(nn.Module):
    """Mean of the history's code embeddings -> user state (B, D)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.ModuleList(nn.Embedding(size, D) for size in SIZES)
        self.out = nn.Linear(D, D)

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201
        x = sum(e(c) for e, c in zip(self.embed, (l1, l2, l3))) * mask.unsqueeze(-1)
        return 3 * torch.tanh(self.out(x.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)))


class PrefixHead(nn.Module):
    """A level scored from the user state plus the embedding of the code chosen just before."""

    def __init__(self, level: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(SIZES[level - 1], D)
        self.head = CandidateHead(SIZES[level], D, width)

    def forward(self, user, prefix, candidates):  # noqa: ANN001, ANN201
        return self.head(expand_beams(user, prefix.shape[1]) + self.embed(prefix[..., -1]), candidates)


def _catalog_codes(rng: np.random.Generator) -> np.ndarray:
    """A few hundred items with uneven fan-outs (1 to 10 pairs per l1, 1 to 12 items per pair)."""
    codes = [
        (l1, l2, l3)
        for l1 in rng.choice(SIZES[0], 14, replace=False)
        for l2 in rng.choice(SIZES[1], rng.choice([1, 2, 4, 6, 10]), replace=False)
        for l3 in rng.choice(SIZES[2], rng.choice([1, 1, 2, 4, 7, 12]), replace=False)
    ]
    return PrefixTables.from_codes(np.array(codes), SIZES).codes()  # sorted: item index = row


@pytest.fixture(scope="module")
def world():
    """(model, codes sorted, item sets (S, N) bool)."""
    rng = np.random.default_rng(7)
    codes = _catalog_codes(rng)
    tables = PrefixTables.from_codes(codes, SIZES)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        scorer = PerLevelScorer(
            CandidateHead(SIZES[0], D, SIZES[0]),
            PrefixHead(1, tables.max_l2_children),
            PrefixHead(2, tables.max_l3_children),
        )
        model = ConstrainedRecommender(BagEncoder(), scorer, tables, codebook_sizes=SIZES).eval()
    n = len(codes)
    some_l1 = rng.choice(np.unique(codes[:, 0]), 7, replace=False)
    sets = np.stack([np.ones(n, bool), rng.random(n) < 0.6, np.isin(codes[:, 0], some_l1), np.zeros(n, bool)])
    sets[3, rng.choice(n, 20, replace=False)] = True  # a set smaller than K
    return model, codes, sets


def _removals(rng: np.random.Generator, kind: int, codes: np.ndarray, sets: np.ndarray, s: int) -> np.ndarray:
    """Items removed from set `s` by one rule combination of `kind`."""
    base, n = sets[s], len(codes)
    removed = np.zeros(n, bool)
    if kind == 1:  # per-request exclusions / history
        removed[rng.choice(n, rng.integers(1, 40), replace=False)] = True
    elif kind == 2:  # whole (l1, l2) pairs
        pairs = codes[base][:, :2]
        for l1, l2 in pairs[rng.choice(len(pairs), min(4, len(pairs)), replace=False)] if len(pairs) else ():
            removed |= (codes[:, 0] == l1) & (codes[:, 1] == l2)
    elif kind == 3:  # whole l1 codes
        removed |= np.isin(codes[:, 0], rng.choice(np.unique(codes[base, 0]), 3))
    elif kind == 4:  # intersection with another set
        removed |= ~sets[rng.integers(1, 3)]
    elif kind == 5:  # fewer than K eligible (possibly none)
        keep = rng.integers(0, K)
        removed |= base & (np.cumsum(base) > keep)
    elif kind == 6:  # nothing eligible
        removed |= True
    return removed & base


def _rule_row(tables: PrefixTables, base: np.ndarray, removed: np.ndarray) -> tuple[np.ndarray, ...]:
    """Brute force: (l1_valid, dead pairs as (l1, slot), removed items as (pair, slot)) of one row."""
    pair_of_item = np.repeat(np.arange(len(tables.l3_count)), tables.l3_count)
    l1_of_pair = np.repeat(np.arange(len(tables.l2_count)), tables.l2_count)
    eligible = base & ~removed
    l1_valid = np.zeros(len(tables.l2_count), bool)
    l1_valid[l1_of_pair[pair_of_item[eligible]]] = True
    dead = np.setdiff1d(pair_of_item[base], pair_of_item[eligible])
    gone = np.flatnonzero(removed)
    dead_rows = np.stack([l1_of_pair[dead], dead - tables.l2_offset[l1_of_pair[dead]]], axis=-1)
    removed_rows = np.stack([pair_of_item[gone], gone - tables.l3_offset[pair_of_item[gone]]], axis=-1)
    return l1_valid, dead_rows, removed_rows


def _stack_lists(lists: list[np.ndarray]) -> np.ndarray:
    width = max(1, *(len(x) for x in lists))
    out = np.tile(np.array([-1, 0], dtype=np.int64), (len(lists), width, 1))
    for row, entries in enumerate(lists):
        out[row, : len(entries)] = entries
    return out


def rule_feed(tables: PrefixTables, sets: np.ndarray, rows: list[tuple[int, np.ndarray]]) -> dict[str, np.ndarray]:
    """The four rule tensors of rows given as (set, removed items)."""
    parts = [_rule_row(tables, sets[s], removed) for s, removed in rows]
    arrays = (
        np.array([[s] for s, _ in rows], dtype=np.int64),
        np.stack([p[0] for p in parts]),
        _stack_lists([p[1] for p in parts]),
        _stack_lists([p[2] for p in parts]),
    )
    return dict(zip(RULE_NAMES, arrays))


def table_feed(tables: PrefixTables, sets: np.ndarray, caps: tuple[int, int]) -> dict[str, np.ndarray]:
    """`tables` padded to `caps` with the item sets `sets` (S, N)."""
    feed = tables.padded(caps)
    pair_of_item = np.repeat(np.arange(len(tables.l3_count)), tables.l3_count)
    set_items = np.zeros((len(sets), feed[TABLE_NAMES[-1]].shape[1]), bool)
    set_items[:, : sets.shape[1]] = sets
    set_pairs = np.zeros((len(sets), feed[TABLE_NAMES[-2]].shape[1]), bool)
    for s, members in enumerate(sets):
        set_pairs[s, pair_of_item[members]] = True
    return {**feed, TABLE_NAMES[-2]: set_pairs, TABLE_NAMES[-1]: set_items}


def _encoders(codes: np.ndarray, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    index = Catalog.from_arrays(np.arange(len(codes)), codes, SIZES).index()
    return random_encoder_batch(index, batch, int(rng.integers(2, 12)), rng)


def _torch(feed: dict[str, np.ndarray], names: tuple[str, ...]) -> list[torch.Tensor]:
    return [torch.from_numpy(feed[name]) for name in names]


def reference(model: ConstrainedRecommender, codes: np.ndarray, encoders: dict[str, np.ndarray], row: int):
    """The same encoder and scorer on a catalog of `codes` only, without rules, for one row."""
    inputs = [t[row : row + 1] for t in _torch(encoders, ENCODER_INPUTS)]
    if not len(codes):
        return np.full((K, 3), -1), np.full(K, -np.inf)
    own = ConstrainedRecommender(
        model.encoder, model.scorer, PrefixTables.from_codes(codes, SIZES), codebook_sizes=SIZES
    )
    with torch.no_grad():
        got = own(*inputs)
    return got[0][0].numpy(), got[1][0].numpy()


def assert_same_answer(got_codes, got_scores, want_codes, want_scores) -> None:  # noqa: ANN001
    assert np.array_equal(got_codes, want_codes)
    assert np.array_equal(np.isneginf(got_scores), np.isneginf(want_scores))
    finite = np.isfinite(want_scores)
    assert np.allclose(got_scores[finite], want_scores[finite], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def searched(world):
    """60 rule combinations, 4 rows per batch: (rows, encoders, codes, scores) per batch."""
    model, codes, sets = world
    rng, batches = np.random.default_rng(11), []
    tables = table_feed(model.tables, sets, model.fanout_caps)
    for b in range(15):
        rows = []
        for r in range(4):
            s, kind = int(rng.integers(0, len(sets))), (4 * b + r) % 7
            rows.append((s, _removals(rng, kind, codes, sets, s)))
        encoders = _encoders(codes, len(rows), rng)
        rules = SearchRules.from_feed(rule_feed(model.tables, sets, rows))
        with torch.no_grad():
            got = model.search(*_torch(encoders, ENCODER_INPUTS), rules=rules, tables=SearchTables.from_feed(tables))
        batches.append((rows, encoders, got[0].numpy(), got[1].numpy()))
    return batches


def test_search_with_rules_equals_the_model_built_on_the_eligible_items(world, searched):
    model, codes, sets = world
    for rows, encoders, got_codes, got_scores in searched:
        for row, (s, removed) in enumerate(rows):
            want = reference(model, codes[sets[s] & ~removed], encoders, row)
            assert_same_answer(got_codes[row], got_scores[row], *want)


def test_every_answer_holds_min_k_distinct_eligible_items(world, searched):
    _, codes, sets = world
    sizes = set()
    for rows, _, got_codes, got_scores in searched:
        for row, (s, removed) in enumerate(rows):
            eligible = {tuple(c) for c in codes[sets[s] & ~removed].tolist()}
            answer = [tuple(c) for c in got_codes[row].tolist() if c[0] >= 0]
            sizes.add(len(eligible))
            assert len(answer) == len(set(answer)) == min(K, len(eligible)) and set(answer) <= eligible
            assert (
                np.isfinite(got_scores[row, : len(answer)]).all() and np.isneginf(got_scores[row, len(answer) :]).all()
            )
    assert 0 in sizes and any(0 < n < K for n in sizes) and max(sizes) > K


def test_without_rules_the_answers_are_the_forward_ones_at_any_cap(world):
    model, codes, _ = world
    encoders = _encoders(codes, 5, np.random.default_rng(3))
    inputs = _torch(encoders, ENCODER_INPUTS)
    tight = ConstrainedRecommender(
        model.encoder,
        model.scorer,
        model.tables,
        fanout_caps=(model.tables.max_l2_children, model.tables.max_l3_children),
    )
    with torch.no_grad():
        forward = model(*inputs)
        no_rules = model.search(*inputs, rules=SearchRules.from_feed(model.default_rule_feed(5)))
        own_tables = model.search(*inputs, rules=None, tables=SearchTables.from_feed(model.table_feed()))
        widest = tight(*inputs)  # the static widths before the caps: the catalog's widest fan-outs
    for got in (no_rules, own_tables, widest):
        assert_same_answer(got[0].numpy(), got[1].numpy(), forward[0].numpy(), forward[1].numpy())


def test_a_cap_below_the_widest_fanout_is_refused(world):
    model, _, sets = world
    tables = model.tables
    with pytest.raises(
        ConfigError, match=f"C3 = 2 is below the catalog's widest level-3 fan-out \\({tables.max_l3_children}\\)"
    ):
        ConstrainedRecommender(model.encoder, model.scorer, tables, fanout_caps=(tables.max_l2_children, 2))
    tight = ConstrainedRecommender(model.encoder, model.scorer, tables, fanout_caps=(tables.max_l2_children, 12))
    wider = PrefixTables.from_codes(np.array([[0, 0, c] for c in range(13)]), SIZES)
    with pytest.raises(ConfigError, match="widest level-3 fan-out is 13, above the model's cap C3 = 12"):
        tight.search(*_torch(_encoders(wider.codes(), 2, np.random.default_rng(0)), ENCODER_INPUTS),
                     tables=SearchTables.from_feed(wider.padded(tight.fanout_caps)))  # fmt: skip


def _shifted_catalog(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A later catalog of the same codebooks: 30 % of the items gone, a new l1 code with new items."""
    unused = np.setdiff1d(np.arange(SIZES[0]), codes[:, 0])[0]
    new = np.array([[unused, l2, l3] for l2 in (1, 2) for l3 in (3, 4, 5)])
    return PrefixTables.from_codes(np.concatenate([codes[rng.random(len(codes)) > 0.3], new]), SIZES).codes()


def test_the_onnx_export_takes_rules_and_any_catalog_and_equals_eager(world, tmp_path):
    model, codes, sets = world
    index = Catalog.from_arrays(np.arange(len(codes)), codes, SIZES).index()
    path = export_onnx(model, tmp_path / "m.onnx", ExportConfig(max_batch_size=8, max_seq_length=16), index)
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == [*ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES]
    assert {p.key: p.value for p in graph.metadata_props} == {
        "ugt.fanout_caps": f"{model.fanout_caps[0]},{model.fanout_caps[1]}", "ugt.rules": "search"
    }  # fmt: skip
    assert not any(init.name.startswith("table_") for init in graph.graph.initializer)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    later = _shifted_catalog(codes, rng)
    later_sets = np.stack([np.ones(len(later), bool), rng.random(len(later)) < 0.5, rng.random(len(later)) < 0.2])
    for catalog, item_sets in ((codes, sets), (later, later_sets)):
        tables = PrefixTables.from_codes(catalog, SIZES)
        sets_of_rows = rng.integers(0, len(item_sets), 7)
        rows = [(int(s), _removals(rng, kind, catalog, item_sets, s)) for kind, s in enumerate(sets_of_rows)]
        feed = {
            **_encoders(catalog, len(rows), rng),
            **rule_feed(tables, item_sets, rows),
            **table_feed(tables, item_sets, model.fanout_caps),
        }
        got = session.run(list(MODEL_OUTPUTS), feed)
        with torch.no_grad():
            eager = model.rule_step()(*_torch(feed, (*ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES)))
        assert_same_answer(got[0], got[1], eager[0].numpy(), eager[1].numpy())
        for row, (s, removed) in enumerate(rows):
            want = reference(model, catalog[item_sets[s] & ~removed], feed, row)
            assert_same_answer(got[0][row], got[1][row], *want)
