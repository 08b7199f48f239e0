"""Property-based fuzzing of HISTORY parsing, packing and per-request isolation (Hypothesis).

List documents come from `ugt_ensemble_dev.reliability.fuzz.case_strategy`: hostile documents (deep nesting, integers
past int64 or thousands of digits long, floats, NaN/Infinity, payloads at and past 1 MiB, invalid UTF-8,
garbage, wrong event shapes, unknown event types of any length) mixed with valid ones, each knowing
whether it is valid and, if so, what it holds. Object documents (events with rules) come from
`request_documents` below: those lists as "events", each rule key absent, valid or wrong, unknown keys, and
arbitrary JSON objects.

CI runs the "ci" profile (a few thousand cases, well under a minute). `UGT_FUZZ_EXAMPLES=100000` selects
the "fuzz" profile: that many parsed documents in each parse test, a quarter as many packed batches and
a tenth as many mixed dynamic batches.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from datetime import timedelta
from typing import Iterator
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ugt_ensemble.runtime import history as history_module
from ugt_ensemble.runtime.batching import answer_batch, row_bounds
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, ENCODER_INPUTS, NUM_TOKEN_TYPES
from ugt_ensemble.runtime.errors import CLIENT_ERROR, SERVER_ERROR, RequestError
from ugt_ensemble.runtime.history import REQUEST_KEYS, History, HistoryError, parse_history
from ugt_ensemble.runtime.history import parse_request as parse_document
from ugt_ensemble.runtime.packing import PackedBatch, PackingConfig, pack_histories
from ugt_ensemble.runtime.rule_request import MAX_EXCLUDED_ITEMS, MAX_SETS_PER_REQUEST, NO_RULES, RuleRequest
from ugt_ensemble_dev.reliability.fuzz import SMALL_KINDS, FuzzCase, case_strategy

EXAMPLES = int(os.environ.get("UGT_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "ci",
    max_examples=1_500,
    deadline=timedelta(seconds=5),  # a slow case fails; `time_limit` below stops a hanging one
    database=None,  # no .hypothesis/ folder in the checkout; failures print a reproduction blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
settings.register_profile("fuzz", settings.get_profile("ci"), max_examples=max(EXAMPLES, 1))
PROFILE = settings.get_profile("fuzz" if EXAMPLES else "ci")
HANG_S = 10.0

#: A 600-item catalog (even ids 0..1198) with random distinct codes; the fuzzer draws ids around it.
_RNG = np.random.default_rng(5)
CATALOG = CatalogIndex(
    np.arange(0, 1200, 2, dtype=np.int64),
    np.stack([_RNG.choice(size, 600, replace=size < 600) for size in CODEBOOK_SIZES], axis=1),
)
ITEM_POOL = list(range(-3, 1300))
CODES_OF = {int(i): c.tolist() for i, c in zip(CATALOG.item_ids, CATALOG.codes)}


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the block if it runs longer than `seconds` (SIGALRM; a hang fails the test)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_outcome(case: FuzzCase) -> History | str:
    """The parsed history, or the HistoryError's message after checking the error's properties."""
    with time_limit(HANG_S):
        try:
            history = parse_history(case.document)
        except HistoryError as exc:
            message = str(exc)
            assert isinstance(exc, RequestError) and 0 < len(message) < 500, message[:600]
            assert not case.valid, f"valid document refused: {message}"
            assert case.hint is None or case.hint in message, f"expected {case.hint!r} in {message!r}"
            return message
    assert case.valid, "invalid document accepted"
    assert history.item_ids.dtype == np.int64 and history.token_types.dtype == np.int64
    assert history.item_ids.shape == history.token_types.shape == (len(case.item_ids),)
    assert ((history.token_types >= 1) & (history.token_types < NUM_TOKEN_TYPES)).all()
    assert history.item_ids.tolist() == case.item_ids and history.token_types.tolist() == case.token_types
    return history


@settings(PROFILE)
@given(case_strategy(ITEM_POOL))
def test_parse_history_returns_what_the_document_holds_or_a_short_history_error(case):
    event(case.kind)  # `pytest --hypothesis-show-statistics` shows how often each kind was drawn
    parse_outcome(case)


@settings(PROFILE)
@given(case_strategy(ITEM_POOL))
def test_the_standard_library_path_agrees_with_the_fast_path(case):
    """Where orjson is missing (or refuses a document) the stdlib parser decides: same verdicts, same errors."""
    fast = parse_outcome(case)
    with mock.patch.object(history_module, "_fast_loads", None):
        strict = parse_outcome(case)
    assert type(fast) is type(strict) and (isinstance(fast, History) or fast == strict), (fast, strict)


def check_packed(histories: list[History], packed: PackedBatch, config: PackingConfig) -> None:
    """Shapes, ranges, mask/position consistency, and the kept events (the most recent known ones)."""
    tensors, n = packed.tensors, len(histories)
    width = tensors["encoder_mask"].shape[1]
    assert 1 <= width <= config.max_seq_length and width == int(packed.padded_lengths.max(initial=width))
    for name in ENCODER_INPUTS:
        assert tensors[name].shape == (n, width)
        assert tensors[name].dtype == (np.float32 if name == "encoder_mask" else np.int64)
    mask = tensors["encoder_mask"]
    assert np.array_equal(mask, (np.arange(width) < packed.lengths[:, None]).astype(np.float32))
    assert np.array_equal(tensors["encoder_positions"], np.arange(width) * (mask > 0))
    for name, size in zip(ENCODER_INPUTS[:3], CODEBOOK_SIZES):
        assert ((tensors[name] >= 0) & (tensors[name] < size)).all() and not tensors[name][mask == 0].any()
    types = tensors["encoder_token_types"]
    assert ((types >= 1) & (types < NUM_TOKEN_TYPES))[mask > 0].all() and not types[mask == 0].any()
    assert set(packed.padded_lengths.tolist()) <= set(config.buckets)
    for row, history in enumerate(histories):
        known = [(i, t) for i, t in zip(history.item_ids.tolist(), history.token_types.tolist()) if i in CODES_OF]
        kept = known[len(known) - min(len(known), config.max_seq_length) :]
        length = len(kept)
        assert packed.lengths[row] == length <= packed.padded_lengths[row]
        codes = np.stack([tensors[name][row, :length] for name in ENCODER_INPUTS[:3]], axis=1)
        assert codes.tolist() == [CODES_OF[i] for i, _ in kept] and types[row, :length].tolist() == [t for _, t in kept]


packing_configs = st.builds(
    PackingConfig,
    max_seq_length=st.sampled_from([1, 3, 8, 64, 1024]),
    buckets=st.lists(st.integers(1, 2048), max_size=4).map(tuple),
)


@settings(PROFILE, max_examples=max(PROFILE.max_examples // 4, 1))
@given(st.lists(case_strategy(ITEM_POOL, ("valid", "valid_at_limit", "not_a_list")), max_size=8), packing_configs)
def test_packing_any_parsed_histories_gives_tensors_within_the_contract(cases, config):
    histories = [h for h in map(parse_outcome, cases) if isinstance(h, History)]
    with time_limit(HANG_S):
        packed = pack_histories(histories, CATALOG, config)
    check_packed(histories, packed, config)


def parse_request(request: tuple[int, list[bytes]]) -> tuple[int, list[History]]:
    """What preprocess does with one request: every row parsed, the row named when there are several."""
    index, documents = request
    histories = []
    for row, raw in enumerate(documents):
        try:
            histories.append(parse_history(raw))
        except HistoryError as exc:
            raise HistoryError(f"row {row}: {exc}" if len(documents) > 1 else str(exc)) from None
    return index, histories


@settings(PROFILE, max_examples=max(PROFILE.max_examples // 10, 1))
@given(
    st.lists(st.lists(case_strategy(ITEM_POOL, SMALL_KINDS), min_size=1, max_size=4), min_size=1, max_size=12),
    st.sets(st.integers(0, 11), max_size=2),
    packing_configs,
)
def test_a_mixed_batch_gets_one_outcome_per_request_and_client_errors_for_client_faults(requests, culprits, config):
    """A request whose engine call fails (a culprit: a server fault) fails alone with INTERNAL."""

    def run(parsed: list[tuple[int, list[History]]]) -> list[dict[str, np.ndarray]]:
        if any(index in culprits for index, _ in parsed):
            raise RuntimeError("engine failure")
        packed = pack_histories([h for _, rows in parsed for h in rows], CATALOG, config)
        return [packed.rows(a, b) for a, b in row_bounds([len(rows) for _, rows in parsed])]

    with time_limit(HANG_S):
        outcomes = answer_batch([(i, [c.document for c in r]) for i, r in enumerate(requests)], parse_request, run)
    assert len(outcomes) == len(requests)
    for index, (request, outcome) in enumerate(zip(requests, outcomes)):
        if not all(case.valid for case in request):
            assert outcome.outputs is None and outcome.code == CLIENT_ERROR and 0 < len(outcome.error) < 500
        elif index in culprits:
            assert outcome.outputs is None and outcome.code == SERVER_ERROR
        else:
            alone = pack_histories([parse_history(c.document) for c in request], CATALOG, config)
            expected = alone.rows(0, len(request))
            assert outcome.error is None and outcome.outputs.keys() == expected.keys()
            assert all(np.array_equal(outcome.outputs[k], expected[k]) for k in expected)


def test_a_str_document_with_a_lone_surrogate_is_a_history_error():
    with pytest.raises(HistoryError):
        parse_history('[1, "\ud800"]')


def test_a_long_integer_under_an_ignored_key_gets_one_verdict():
    """Ignored keys are ignored on both paths: orjson's, and the stdlib's (which a lone surrogate forces)."""
    long_int = "9" * 25
    alone = f'[{{"item_id":1,"ts":{long_int}}}]'.encode()
    with_escape = f'[{{"item_id":1,"ts":{long_int},"s":"\\ud800"}}]'.encode()
    for document in (alone, with_escape):
        assert isinstance(parse_outcome(FuzzCase("probe", document, True, [1], [1])), History)


# --- The object form: events with rules -------------------------------------------------------------------
#: JSON fragments that are wrong for each rule key (each must be refused, whatever else the document holds).
BAD_RULES = {
    "exclude_history": ("1", "0", "null", '"true"', "[]", "{}", "1.5", "9" * 30),
    "exclude": ("1", "null", '"1,2"', "{}", "[true]", "[1.0]", '["7"]', "[null]", "[[1]]", f"[{2**63}]",
                f"[{-(2**63) - 1}]", "[" + "9" * 25 + "]", "[1e400]", "[" + ",".join(["1"] * 1001) + "]"),
    "sets": ('"in_stock"', "null", "{}", "[1]", "[true]", '[""]', '["a", "a"]', "[null]", '[["a"]]',
             '["' + "x" * 201 + '"]', "[" + ",".join(f'"s{i}"' for i in range(9)) + "]"),
}  # fmt: skip
int64s = st.integers(-(2**63), 2**63 - 1) | st.sampled_from(ITEM_POOL)
set_names = st.text(min_size=1, max_size=12) | st.sampled_from(["in_stock", "category=books", "x" * 200])
GOOD_RULES = {
    "exclude_history": st.booleans(),
    "exclude": st.lists(int64s, max_size=20) | st.just(list(range(MAX_EXCLUDED_ITEMS))),
    "sets": st.lists(set_names, max_size=MAX_SETS_PER_REQUEST, unique=True),
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def request_documents(draw) -> tuple[bytes, tuple | None]:
    """An object document and what it holds: (item ids, token types, exclude_history, exclude, sets), or
    None when it must be refused."""
    events = draw(case_strategy(ITEM_POOL, ("valid",)) | case_strategy(ITEM_POOL, SMALL_KINDS))
    valid = events.valid and events.document.lstrip().startswith(b"[")
    parts = [] if draw(st.integers(0, 19)) == 0 else [(b'"events"', events.document)]
    valid &= bool(parts)
    rules: dict = {}
    for key in REQUEST_KEYS[1:]:
        how = draw(st.sampled_from(["absent", "good", "good", "good", "bad"]))
        if how == "good":
            rules[key] = draw(GOOD_RULES[key])
            parts.append((json.dumps(key).encode(), json.dumps(rules[key]).encode()))
        elif how == "bad":
            parts.append((json.dumps(key).encode(), draw(st.sampled_from(BAD_RULES[key])).encode()))
            valid = False
    if draw(st.integers(0, 9)) == 0:
        unknown = draw(st.text(max_size=10).filter(lambda k: k not in REQUEST_KEYS))
        parts.append((json.dumps(unknown).encode(), draw(json_values.map(json.dumps)).encode()))
        valid = False
    order = draw(st.permutations(parts))
    document = b"{" + b", ".join(k + b": " + v for k, v in order) + b"}"
    if not valid:
        return document, None
    expected = RuleRequest(rules.get("exclude_history"), rules.get("exclude", []), tuple(rules.get("sets", ())))
    return document, (events.item_ids, events.token_types, expected)


def request_outcome(document: bytes | str) -> tuple[History, RuleRequest] | str:
    """`parse_request`'s result, or its HistoryError's message; anything else fails the test."""
    with time_limit(HANG_S):
        try:
            history, rules = parse_document(document)
        except HistoryError as exc:
            message = str(exc)
            assert isinstance(exc, RequestError) and 0 < len(message) < 500, message[:600]
            return message
    assert isinstance(history, History) and isinstance(rules, RuleRequest)
    assert history.item_ids.dtype == history.token_types.dtype == rules.exclude.dtype == np.int64
    assert rules.exclude_history in (None, True, False) and len(rules.exclude) <= MAX_EXCLUDED_ITEMS
    assert len(rules.sets) <= MAX_SETS_PER_REQUEST and all(type(s) is str and s for s in rules.sets)
    return history, rules


@settings(PROFILE)
@given(request_documents())
def test_parse_request_returns_what_an_object_document_holds_or_a_history_error(case):
    document, expected = case
    outcome = request_outcome(document)
    if expected is None:
        assert isinstance(outcome, str), f"invalid document accepted: {document[:300]!r}"
        return
    assert not isinstance(outcome, str), f"valid document refused: {outcome}"
    history, rules = outcome
    item_ids, token_types, expected_rules = expected
    assert history.item_ids.tolist() == item_ids and history.token_types.tolist() == token_types
    assert rules.exclude_history == expected_rules.exclude_history and rules.sets == expected_rules.sets
    assert rules.exclude.tolist() == list(expected_rules.exclude)
    with mock.patch.object(history_module, "_fast_loads", None):
        assert not isinstance(request_outcome(document), str)


@settings(PROFILE)
@given(st.dictionaries(st.sampled_from(REQUEST_KEYS) | st.text(max_size=6), json_values, max_size=5))
def test_parse_request_on_arbitrary_objects_gives_a_request_or_a_history_error(obj):
    """Also: the fast path and the standard library's agree, in verdict and message."""
    document = json.dumps(obj).encode()
    fast = request_outcome(document)
    with mock.patch.object(history_module, "_fast_loads", None):
        strict = request_outcome(document)
    assert type(fast) is type(strict) and (not isinstance(fast, str) or fast == strict), (fast, strict)


@settings(PROFILE)
@given(case_strategy(ITEM_POOL))
def test_parse_request_reads_every_list_document_as_parse_history_does(case):
    """The list form is unchanged: the same history with no rules, or an error."""
    outcome = request_outcome(case.document)
    if case.valid:
        history, rules = outcome
        assert rules is NO_RULES and history.item_ids.tolist() == case.item_ids
        assert history.token_types.tolist() == case.token_types
    elif not case.document.lstrip().startswith(b"{"):  # an object may be a valid request here
        assert isinstance(outcome, str)
