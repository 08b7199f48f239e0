"""Rule lists are bounded per row and per call in every step (`runtime.rule_lists`): surplus padding is trimmed,
rows with more real entries than the catalog allows are refused naming the tensor, and a call never pads one
request's lists to another's width (issue 22, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recommender import make_recommender

from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.rule_step import SearchRules, SearchTables
from ugt_ensemble.runtime.constraint_data import MAX_INTERSECTION_REMOVALS, ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, RULE_DEAD_PAIRS, RULE_NAMES, RULE_REMOVED_ITEMS, RULE_SET
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.model_step import run_by_length
from ugt_ensemble.runtime.rule_lists import (
    SHARED_WIDTH,
    RuleListLimits,
    bound_rule_lists,
    request_list_limit,
    rows_per_call,
    trim_padding,
    width_groups,
)
from ugt_ensemble.runtime.rule_request import MAX_EXCLUDED_ITEMS, RuleRequest
from ugt_ensemble.runtime.rules import pack_rules


def _lists(*rows: list[tuple[int, int]], width: int | None = None) -> np.ndarray:
    width = width or max(1, *(len(r) for r in rows))
    out = np.zeros((len(rows), width, 2), dtype=np.int64)
    out[..., 0] = -1
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = row
    return out


def test_trim_padding_keeps_the_real_entries_in_order_at_the_longest_rows_width():
    entries = _lists([(3, 1), (-1, 0), (4, 2)], [(5, 0)], width=100_000)
    entries[1, 70_000] = (6, 1)  # a real entry far behind padding
    trimmed = trim_padding(entries)
    assert trimmed.shape == (2, 2, 2)
    assert trimmed[0].tolist() == [[3, 1], [4, 2]] and trimmed[1].tolist() == [[5, 0], [6, 1]]
    assert trim_padding(_lists([], width=100_000)).shape == (1, 1, 2)  # all padding: one entry
    tight = _lists([(1, 1), (2, 2)], [(3, 3)])
    assert trim_padding(tight) is tight  # nothing to trim: no copy


def test_limits_follow_the_catalog_and_the_builds_bound():
    assert RuleListLimits.of(3_000, 400, request_list_limit(100_000)) == RuleListLimits(3_000, 400)
    assert RuleListLimits.of(1_000_000, 200_000, 2048) == RuleListLimits(2048, 2048)
    assert request_list_limit(100_000) == 100_000 + MAX_EXCLUDED_ITEMS + MAX_INTERSECTION_REMOVALS


def test_rows_with_more_real_entries_than_the_bound_are_refused_naming_the_tensor():
    limits = RuleListLimits(removed_items=3, dead_pairs=2)
    ok = {RULE_DEAD_PAIRS: _lists([(1, 0)], width=50_000), RULE_REMOVED_ITEMS: _lists([(1, 0)] * 3, width=9)}
    bounded = bound_rule_lists(ok, limits)  # padding does not count
    assert bounded[RULE_DEAD_PAIRS].shape == (1, 1, 2) and bounded[RULE_REMOVED_ITEMS].shape == (1, 3, 2)
    with pytest.raises(RequestError, match=rf"{RULE_REMOVED_ITEMS}: row 1 holds 4 entries .* at most 3"):
        bound_rule_lists({**ok, RULE_REMOVED_ITEMS: _lists([], [(0, 0)] * 4)}, limits)
    with pytest.raises(RequestError, match=rf"{RULE_DEAD_PAIRS}: row 0 holds 3 entries"):
        bound_rule_lists({**ok, RULE_DEAD_PAIRS: _lists([(0, 0)] * 3)}, limits)


def test_width_groups_never_put_a_long_list_with_short_ones():
    requests = [
        {RULE_REMOVED_ITEMS: _lists([], width=w), RULE_DEAD_PAIRS: _lists([], width=1)}
        for w in (1, 100_000, SHARED_WIDTH, 3_000, 2_000, SHARED_WIDTH + 1)
    ]
    requests.append({"encoder_mask": np.zeros((1, 4))})  # no rule tensors: the narrowest group
    assert width_groups(requests) == [[0, 2, 6], [5], [4], [3], [1]]
    assert rows_per_call(100_000, 1 << 16) == 1 and rows_per_call(1, 1 << 16) == 1 << 16


def _request(rows: int, removed: np.ndarray, length: int = 4) -> dict[str, np.ndarray]:
    tensors = {
        name: np.zeros((rows, length), dtype=np.float32 if "mask" in name else np.int64) for name in ENCODER_INPUTS
    }
    return {**tensors, RULE_DEAD_PAIRS: _lists(*[[]] * rows), RULE_REMOVED_ITEMS: removed}


def test_run_by_length_runs_long_lists_apart_and_bounds_entries_per_call():
    requests = [
        _request(2, _lists([(1, 1)], [(2, 2)])),
        _request(3, _lists(*[[(0, 0)] * 5000] * 3)),
        _request(1, _lists([])),
    ]
    seen = []

    def run(feed):
        rows = len(feed[RULE_REMOVED_ITEMS])
        seen.append((rows, feed[RULE_REMOVED_ITEMS].shape[1]))
        return [np.zeros((rows, 50, 3), np.int64), np.zeros((rows, 50), np.float32)]

    results = run_by_length(requests, run, max_tokens=4096, max_rule_entries=10_000)
    assert seen == [(3, 1), (2, 5000), (1, 5000)]  # short ones together at their width; 2 rows of 5000 per call
    assert [len(r["scores"]) for r in results] == [2, 3, 1]


def test_the_model_answers_trimmed_grouped_lists_as_it_answers_the_padded_batch(catalog):
    """Served == eager: trimming padding and running width groups apart change no answer of a real
    ConstrainedRecommender (the worked example's SASRec) against the whole batch padded to its widest list."""
    model = make_recommender(catalog, max_length=16)
    data = ConstraintData.build(catalog.index(), None, model.fanout_caps)
    ids = np.asarray(catalog.item_ids)
    rules = [RuleRequest(), RuleRequest(exclude=ids[:600]), RuleRequest(exclude=ids[700:705]), RuleRequest()]
    packed = pack_rules(rules, [ids[:0]] * 4, data, False)
    encoders = random_encoder_batch(catalog.index(), 4, 16, np.random.default_rng(2))
    tables = SearchTables.from_feed(data.tables())
    tail = np.tile([[[-1, 0]]], (4, 3000, 1))
    padded = {**packed, RULE_REMOVED_ITEMS: np.concatenate([packed[RULE_REMOVED_ITEMS], tail], axis=1)}

    def run(feed):
        with torch.no_grad():
            inputs = [torch.as_tensor(feed[name]) for name in ENCODER_INPUTS]
            codes, scores = model.search(*inputs, rules=SearchRules.from_feed(feed), tables=tables)
        return [codes.numpy(), scores.numpy()]

    want = run({**encoders, **padded})
    limits = RuleListLimits.of(data.num_items, data.num_pairs, request_list_limit(100_000))
    rows = [{**{n: v[i : i + 1] for n, v in encoders.items()}, **{n: padded[n][i : i + 1] for n in RULE_NAMES}}
            for i in range(4)]  # fmt: skip
    requests = [bound_rule_lists(row, limits) for row in rows]
    assert [r[RULE_REMOVED_ITEMS].shape[1] for r in requests] == [1, 600, 5, 1]
    got = run_by_length(requests, run, max_rule_entries=1000)
    assert np.array_equal(np.concatenate([g["recommendations"] for g in got]), want[0])
    assert np.allclose(np.concatenate([g["scores"] for g in got]), want[1], atol=1e-5)
    assert packed[RULE_SET].shape == (4, 1)
