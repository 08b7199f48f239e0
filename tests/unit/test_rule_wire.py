"""The HISTORY document's object form (events with rules): `parse_request`, and `parse_history` refusing it."""

import json

import numpy as np
import pytest

from ugt_ensemble.runtime import history as history_module
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.history import HistoryError, HistoryLimits, parse_history, parse_request
from ugt_ensemble.runtime.rule_request import (
    MAX_EXCLUDED_ITEMS,
    MAX_SETS_PER_REQUEST,
    NO_RULES,
    RuleRequest,
    require_set_name,
)

INT64_MAX = 2**63 - 1


@pytest.fixture(params=["orjson", "stdlib"])
def decoder(request, monkeypatch):
    """Run a test with the optional fast decoder and with the standard library only."""
    if request.param == "stdlib":
        monkeypatch.setattr(history_module, "_fast_loads", None)
    elif history_module._fast_loads is None:
        pytest.skip("orjson is not installed")
    return request.param


def test_the_list_form_asks_for_no_rules(decoder):
    history, rules = parse_request(b'[5, {"item_id": 7, "type": "cart"}]')
    reference = parse_history(b'[5, {"item_id": 7, "type": "cart"}]')
    assert history.item_ids.tolist() == reference.item_ids.tolist() == [5, 7]
    assert history.token_types.tolist() == reference.token_types.tolist()
    assert rules is NO_RULES and not rules.uses_rules(False) and rules.uses_rules(True)


def test_the_object_form_carries_every_rule(decoder):
    document = {"events": [1, {"item_id": 2, "type": "purchase"}], "exclude_history": True,
                "exclude": [3, -4, INT64_MAX], "sets": ["in_stock", "category=books"]}  # fmt: skip
    history, rules = parse_request(json.dumps(document).encode())
    assert history.item_ids.tolist() == [1, 2]
    assert rules.exclude_history is True and rules.sets == ("in_stock", "category=books")
    assert rules.exclude.dtype == np.int64 and rules.exclude.tolist() == [3, -4, INT64_MAX]


def test_only_events_is_required(decoder):
    history, rules = parse_request('{"events": []}')
    assert len(history) == 0
    assert rules.exclude_history is None and rules.exclude.dtype == np.int64 and len(rules.exclude) == 0
    assert rules.sets == () and not rules.uses_rules(False)
    _, rules = parse_request('{"events": [1], "exclude_history": false, "exclude": [], "sets": []}')
    assert rules.exclude_history is False and not rules.uses_rules(True)


def test_limits_are_inclusive(decoder):
    ids = list(range(MAX_EXCLUDED_ITEMS))
    names = [f"s{i}" for i in range(MAX_SETS_PER_REQUEST)]
    _, rules = parse_request(json.dumps({"events": [1], "exclude": ids, "sets": names}))
    assert len(rules.exclude) == MAX_EXCLUDED_ITEMS and len(rules.sets) == MAX_SETS_PER_REQUEST
    _, rules = parse_request(json.dumps({"events": [1], "sets": ["x" * 200]}))
    assert rules.sets == ("x" * 200,)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"events": [1], "exlude": [2]}', 'unknown key(s) "exlude"; the keys are events, exclude_history'),
        ('{"events": [1], "a": 1, "b": 2, "c": 3, "d": 4}', '"a", "b", "c" and 1 more'),
        ('{"exclude": [2]}', 'lacks "events"'),
        ("{}", 'lacks "events"'),
        ('{"events": {"item_id": 1}}', '"events" must be a list of events, got object'),
        ('{"events": [1, "x"]}', '"events": event 1: expected an item id'),
        ('{"events": [{"item_id": 1, "type": "like"}]}', '"events": event 0: unknown event type "like"'),
        ('{"events": [1], "exclude_history": 1}', '"exclude_history" must be true or false, got integer'),
        ('{"events": [1], "exclude_history": "true"}', '"exclude_history" must be true or false, got string'),
        ('{"events": [1], "exclude_history": null}', '"exclude_history" must be true or false, got null'),
        ('{"events": [1], "exclude": 5}', '"exclude" must be a list of item ids, got integer'),
        ('{"events": [1], "exclude": [1, true]}', '"exclude"[1] must be an integer item id, got boolean'),
        ('{"events": [1], "exclude": [1.0]}', '"exclude"[0] must be an integer item id, got number'),
        ('{"events": [1], "exclude": ["7"]}', '"exclude"[0] must be an integer item id, got string'),
        (f'{{"events": [1], "exclude": [{2**63}]}}', '"exclude"[0]: item id 9223372036854775808 is outside'),
        (f'{{"events": [1], "exclude": [{-(2**63) - 1}]}}', '"exclude"[0]: item id -9223372036854775809'),
        ('{"events": [1], "exclude": [' + "9" * 30 + "]}", '"exclude"[0] is an integer literal of 30 digits'),
        ('{"events": [1], "exclude_history": ' + "9" * 30 + "}", '"exclude_history" must be true or false'),
        ('{"events": [1], "sets": "in_stock"}', '"sets" must be a list of set names, got string'),
        ('{"events": [1], "sets": [3]}', '"sets"[0] must be a set name (a string), got integer'),
        ('{"events": [1], "sets": ["a", ""]}', '"sets"[1] is empty'),
        ('{"events": [1], "sets": ["' + "x" * 201 + '"]}', '"sets"[0] is 201 characters long; the limit is 200'),
        ('{"events": [1], "sets": ["a", "b", "a"]}', '"sets"[2] repeats "a"'),
        ('"abc"', 'must be a JSON list of events or an object with "events", got string'),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_each_problem_names_its_key(decoder, document, message):
    with pytest.raises(HistoryError) as info:
        parse_request(document)
    assert message in str(info.value) and isinstance(info.value, RequestError)
    assert len(str(info.value)) < 300


def test_list_and_name_counts_are_bounded(decoder):
    with pytest.raises(HistoryError, match=f'"exclude" has 1001 item ids; the limit is {MAX_EXCLUDED_ITEMS}'):
        parse_request(json.dumps({"events": [1], "exclude": list(range(1001))}))
    with pytest.raises(HistoryError, match=f'"sets" has 9 names; the limit is {MAX_SETS_PER_REQUEST}'):
        parse_request(json.dumps({"events": [1], "sets": [f"s{i}" for i in range(9)]}))


def test_the_size_and_event_limits_hold_for_the_object_form(decoder):
    limits = HistoryLimits(max_bytes=40, max_events=2)
    with pytest.raises(HistoryError, match='"events" has 3 events; the limit is 2'):
        parse_request('{"events": [1, 2, 3]}', limits)
    with pytest.raises(HistoryError, match="bytes; the limit is 40"):
        parse_request(json.dumps({"events": [1], "exclude": list(range(20))}).encode(), limits)


def test_an_unknown_key_is_clipped_in_the_message(decoder):
    with pytest.raises(HistoryError) as info:
        parse_request(json.dumps({"events": [], "k" * 10_000: 1}))
    assert len(str(info.value)) < 200 and "(10002 characters)" in str(info.value)  # quoted as JSON


def test_parse_history_refuses_the_object_form(decoder):
    """A step that cannot honour rules must not drop them silently."""
    with pytest.raises(HistoryError, match="must be a JSON list of events, got object"):
        parse_history('{"events": [1], "exclude": [2]}')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": [1], "exclude": [' + b"9" * 20 + b"]}",  # orjson: an int past int64; stdlib: a long literal
        b'{"events": [1], "exclude": [' + b"9" * 30 + b"]}",  # orjson: a float
        b'{"events": [1], "sets": ["\\ud800"]}',  # orjson refuses a lone surrogate
        b'{"events": [1, {"item_id": 2, "ts": ' + b"9" * 40 + b"}]}",
        b'{"events": [1], "exclude": [1, 2], "exclude": []}',
        b'{"events": [NaN]}',
    ],
)
def test_fast_and_strict_paths_agree(decoder, raw):
    def outcome(parse):
        try:
            history, rules = parse(raw)
        except HistoryError as exc:
            return str(exc)
        return history.item_ids.tolist(), rules.exclude_history, rules.exclude.tolist(), rules.sets

    reference = outcome(lambda r: history_module._parse_request_strict(r, HistoryLimits()))
    assert outcome(parse_request) == reference


def test_set_names_defined_at_build_time_are_checked():
    assert require_set_name("category=books", "--item-set") == "category=books"
    assert require_set_name("region:eu-west.1", "x") == "region:eu-west.1"
    for real in ("men's clothing", "Home & Garden", "Café/Bäckerei", "category=家居", "x" * 200):
        assert require_set_name(real, "x") == real
    assert require_set_name("Cafe\u0301", "x") == "Café"  # stored in NFC
    for bad in ("", " a", "a\n", "a\tb", "\x00", "a\x85b", "a\u2028b", "a\u202eb", "\ud800", "x" * 201, 3, None):
        with pytest.raises(Exception, match="--set-column: item set name .* a set name is 1-200 characters"):
            require_set_name(bad, "--set-column")


def test_rule_request_defaults():
    rules = RuleRequest()
    assert rules.exclude.dtype == np.int64 and rules.sets == () and rules.exclude_history is None
