import json

import numpy as np
import pytest

from ugt_ensemble.runtime.contract import TOKEN_TYPE_OF_EVENT
from ugt_ensemble.runtime.history import HistoryError, HistoryLimits, parse_history


def test_bare_ids_are_views():
    history = parse_history(b"[5, 7, 9]")
    assert history.item_ids.tolist() == [5, 7, 9]
    assert history.token_types.tolist() == [TOKEN_TYPE_OF_EVENT["view"]] * 3


def test_typed_and_bare_events_mix_and_extra_keys_are_ignored():
    raw = json.dumps([1, {"item_id": 2, "type": "cart", "ts": 17}, {"item_id": 3}])
    history = parse_history(raw)
    assert history.item_ids.tolist() == [1, 2, 3]
    assert history.token_types.tolist() == [1, TOKEN_TYPE_OF_EVENT["cart"], 1]
    assert history.item_ids.dtype == np.int64


def test_empty_list_is_a_valid_history():
    assert len(parse_history("[]")) == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff[1]", "not valid UTF-8"),
        ("[1, 2", "not valid JSON"),
        ('{"item_id": 1}', "must be a JSON list of events, got object"),
        ('"abc"', "got string"),
        ("[1, [2]]", "event 1: expected an item id or an object"),
        ("[1.5]", "event 0: expected an item id"),
        ("[true]", "got boolean"),
        ("[null]", "got null"),
        ('[{"type": "view"}]', 'event 0: missing "item_id"'),
        ('[{"item_id": "7"}]', '"item_id" must be an integer, got string'),
        ('[{"item_id": false}]', '"item_id" must be an integer, got boolean'),
        ('[{"item_id": 1, "type": "like"}]', 'unknown event type "like"'),
        ('[{"item_id": 1, "type": 3}]', "unknown event type 3"),
        (f"[{2**63}]", "outside the int64 range"),
        (f'[1, {{"item_id": {-(2**63) - 1}}}]', "event 1: item id"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("[NaN]", "NaN is not a JSON value"),
        ("[1, -Infinity]", "-Infinity is not a JSON value"),
        ("[" + "9" * 5000 + "]", "integer literal of 5000 digits"),
        ('[{"item_id": -' + "1" * 30 + "}]", "integer literal of 30 digits"),
    ],
)
def test_malformed_histories_name_the_problem(raw, message):
    with pytest.raises(HistoryError, match=message.replace("[", r"\[")):
        parse_history(raw)


def test_size_limits():
    limits = HistoryLimits(max_bytes=20, max_events=3)
    with pytest.raises(HistoryError, match="bytes; the limit is 20"):
        parse_history(b"[" + b"1," * 20 + b"1]", limits)
    with pytest.raises(HistoryError, match="has 4 events; the limit is 3"):
        parse_history("[1,2,3,4]", limits)
    assert len(parse_history("[1,2,3]", limits)) == 3


@pytest.fixture(params=["orjson", "stdlib"])
def decoder(request, monkeypatch):
    """Run a test with the optional fast decoder and with the standard library only."""
    from ugt_ensemble.runtime import history

    if request.param == "stdlib":
        monkeypatch.setattr(history, "_fast_loads", None)
    elif history._fast_loads is None:
        pytest.skip("orjson is not installed")
    return request.param


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'[{"item_id": 3, "type": "cart"}, 4]',
        b"[]",
        b"[1.0]",
        b'[{"item_id": 1, "type": ["x"]}]',
        b"[NaN]",
        f"[{2**64 + 5}]".encode(),
        b'"\\ud800"',
        b"[" + b"1," * 5 + b"x]",
        b'[{"item_id": 9223372036854775807}]',
    ],
)
def test_fast_and_strict_paths_agree(decoder, raw):
    try:
        history = parse_history(raw)
        outcome = (history.item_ids.tolist(), history.token_types.tolist())
    except HistoryError as exc:
        outcome = str(exc)
    from ugt_ensemble.runtime import history as module

    try:
        reference = module._parse_strict(raw, HistoryLimits())
        expected = (reference.item_ids.tolist(), reference.token_types.tolist())
    except HistoryError as exc:
        expected = str(exc)
    assert outcome == expected


def test_quoted_values_are_cut_and_their_length_stated():
    """A 16 KB event type must not come back whole (gRPC metadata limits, 1 MB error bodies)."""
    kind = "x" * 16_000
    with pytest.raises(HistoryError) as info:
        parse_history(json.dumps([{"item_id": 1, "type": kind}]))
    message = str(info.value)
    assert len(message) < 250 and "(16002 characters)" in message


def test_long_integer_literals_are_refused_before_conversion():
    """Python refuses > 4300-digit ints with a misleading ValueError; older Pythons convert them slowly."""
    with pytest.raises(HistoryError, match="integer literal of 100000 digits") as info:
        parse_history("[" + "7" * 100_000 + "]", HistoryLimits(max_bytes=1 << 20))
    assert len(str(info.value)) < 200


def test_digit_runs_inside_strings_are_not_integers():
    history = parse_history('[{"item_id": 4, "type": "view", "note": "' + "1" * 50 + '"}]')
    assert history.item_ids.tolist() == [4]


def test_a_long_integer_under_an_ignored_key_is_ignored_and_never_converted():
    history = parse_history('[{"item_id": 4, "ts": ' + "9" * 50_000 + "}]")
    assert history.item_ids.tolist() == [4]
