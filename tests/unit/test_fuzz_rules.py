"""The server fuzzer's object-form documents and its rule oracle, checked against the runtime that serves them
(`parse_request`, then `ConstraintData.check_request` as preprocess runs them) without a server."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.history import parse_request
from ugt_ensemble_dev.reliability.fuzz_json import RandomSource
from ugt_ensemble_dev.reliability.fuzz_rules import NOT_HONOURED, RuleContext, invalid_rule_case, valid_rule_case
from ugt_ensemble_dev.reliability.rule_oracle import RuleExpectation, RuleOracle

CASES = 600


@pytest.fixture(scope="module")
def served() -> tuple[ConstraintData, RuleOracle]:
    index = synthetic_catalog(2_000, seed=4).index()
    rng = np.random.default_rng(6)
    sets = {
        "in_stock": rng.random(len(index)) < 0.7,
        "category=a": index.codes[:, 0] % 2 == 0,
        "category=b": index.codes[:, 0] % 2 == 1,
        "fresh": np.isin(np.arange(len(index)), rng.choice(len(index), 30, replace=False)),
    }
    data = ConstraintData.build(index, sets)
    return data, RuleOracle(data.index.item_ids, data.named_sets())


def served_verdict(document: bytes, data: ConstraintData, honours: bool = True) -> tuple[object, str | None]:
    """What preprocess makes of a document: (its history and rules, None) or (None, the error message)."""
    try:
        history, rules = parse_request(document)
        if not honours and rules.uses_rules(False):
            return None, NOT_HONOURED
        data.check_request(rules)
    except RequestError as exc:
        return None, str(exc)
    return (history, rules), None


def test_valid_cases_are_served_as_they_say_and_invalid_ones_are_refused_naming_the_defect(served):
    data, oracle = served
    ctx = RuleContext(oracle, oracle.item_ids.tolist(), oracle.item_ids[:50].tolist())
    src, kinds, eligible = RandomSource(9), Counter(), Counter()
    for i in range(CASES):
        case = valid_rule_case(src, ctx) if i % 2 else invalid_rule_case(src, ctx, small=i % 20 != 0)
        kinds[case.kind] += 1
        parsed, error = served_verdict(case.document, data)
        if not case.valid:
            assert error is not None and case.hint in error, (case, error)
            continue
        assert error is None, (case, error)
        (history, rules), expected = parsed, case.expectation
        assert history.item_ids.tolist() == list(expected.history) and rules.exclude.tolist() == list(expected.exclude)
        assert rules.sets == expected.sets and rules.exclude_history == expected.exclude_history
        count = oracle.eligible_count(expected)
        eligible["none" if count == 0 else "few" if count < oracle.k else "many"] += 1
    assert len(kinds) >= 15 and set(eligible) == {"none", "few", "many"}, (kinds, eligible)


def test_on_a_model_without_rule_inputs_every_rule_is_refused(served):
    data, oracle = served
    plain = RuleOracle(oracle.item_ids, oracle.sets, rules_in_search=False)
    ctx = RuleContext(plain, plain.item_ids.tolist())
    src = RandomSource(4)
    for _ in range(200):
        case = valid_rule_case(src, ctx)
        _, error = served_verdict(case.document, data, honours=False)
        assert (error is None) == case.valid and (case.valid or case.hint in error), (case, error)


def test_the_oracle_finds_what_breaks_a_rule(served):
    _, oracle = served
    fresh = oracle.members("fresh").tolist()
    outside = [int(i) for i in oracle.item_ids if i not in fresh]
    rules = RuleExpectation(history=(fresh[0], 10**9), exclude_history=True, exclude=(fresh[1],), sets=("fresh",))
    assert oracle.eligible_count(rules) == 28
    good = np.array(fresh[2:] + [-1] * 22)
    assert oracle.problem(rules, good) is None
    assert "expected min(50, 28 eligible)" in oracle.problem(rules, np.r_[good[:27], [-1] * 23])
    assert "history items" in oracle.problem(rules, np.r_[fresh[:1], good[:27], [-1] * 22])
    assert "outside the sets" in oracle.problem(rules, np.r_[good[:28], outside[:1], [-1] * 21])
    assert "repeated" in oracle.problem(rules, np.r_[good[:28], good[:1], [-1] * 21])
    assert "padding" in oracle.problem(rules, np.r_[[-1], good[:28], [-1] * 21])
    assert "outside the catalog" in oracle.problem(RuleExpectation(), np.r_[outside[:49], [10**12]])
