"""Object-form HISTORY documents (events with business rules) for the server fuzzer, each knowing its verdict.

A valid case asks for rules the served repository allows: exclude-history on or off (or left to the
default), exclusions of the model's favourite items, of catalog items, of history items and of ids outside
the catalog (up to the 1,000-id limit), and known item sets, one or several (an empty intersection
included); it carries its `RuleExpectation` for `RuleOracle.problem`. An invalid case has exactly one
defect (an unknown key, a missing or malformed key, a wrong type, too many ids or sets, an unknown or
malformed set name, a huge, deep or non-JSON value) and a `hint`, a substring the server's error must hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ugt_ensemble.runtime.history import REQUEST_KEYS
from ugt_ensemble.runtime.rule_request import MAX_EXCLUDED_ITEMS, MAX_SET_NAME_LENGTH, MAX_SETS_PER_REQUEST
from ugt_ensemble_dev.reliability.fuzz_json import (
    INT64_MAX,
    INT64_MIN,
    Source,
    chance,
    choice,
    int64,
    int_literal,
    json_list,
    json_object,
    random_text,
    scaled,
    string,
    valid_document,
)
from ugt_ensemble_dev.reliability.rule_oracle import RuleExpectation, RuleOracle

#: The error of a rule the model step cannot honour (a repository whose model declares no rule inputs).
NOT_HONOURED = "does not honour business rules"
_NOT_LISTS = ("1", "null", '"[1,2]"', "{}", "true", '{"item_id": 1}', "1.5")
_NOT_FLAGS = ("1", "0", "null", '"true"', "[]", "{}", "1.5", '"yes"', "9" * 30, "-0")
_BAD_IDS = (
    "true",
    "1.0",
    '"7"',
    "null",
    "[1]",
    "{}",
    "9" * 25,
    "1e400",
    "-0.0",
    str(INT64_MAX + 1),
    str(INT64_MIN - 1),
)
_BAD_NAMES = ("1", "true", "null", '["in_stock"]', "{}", "1.5")
_BAD_EVENTS = ('"7"', "1.5", "true", "null", "{}", '{"type": "view"}', '{"item_id": "7"}', "[1]", '{"item_id": 1e3}')
_NEAR_KEYS = ("exlude", "Events", "sets ", "EXCLUDE", "exclude_History", "set", "", "\u00e9v\u00e9nements", "event")


@dataclass(frozen=True)
class RuleCase:
    """One object document: valid (with its expectation) or not (with the hint its error must hold)."""

    kind: str
    document: bytes
    expectation: RuleExpectation | None = None
    hint: str | None = None

    @property
    def valid(self) -> bool:
        return self.expectation is not None


@dataclass(frozen=True)
class RuleContext:
    """What the builders draw from: the oracle, catalog ids, and the items the model likes most (so that
    exclusions bite)."""

    oracle: RuleOracle
    item_ids: Sequence[int]
    favourites: Sequence[int] = ()


def valid_rule_case(src: Source, ctx: RuleContext) -> RuleCase:
    """A document asking for rules the repository allows (an invalid case when the oracle says it is refused:
    a sets' intersection over the bound, or any rule on a model that cannot honour rules)."""
    text, history, _ = valid_document(src, ctx.item_ids, max_events=300)
    pairs = [("events", text)]
    flag = None if chance(src, 40) else chance(src, 50)
    if flag is not None:
        pairs.append(("exclude_history", "true" if flag else "false"))
    names = _known_sets(src, ctx.oracle) if chance(src, 60) else None
    exclude = _exclusions(src, ctx, history, names) if chance(src, 60) else None
    if exclude is not None:
        pairs.append(("exclude", json_list(src, [int_literal(src, i) for i in exclude])))
    if names is not None:
        pairs.append(("sets", json_list(src, [string(src, n) for n in names])))
    expectation = RuleExpectation(tuple(history), flag, tuple(exclude or ()), tuple(names or ()))
    document = _render(src, pairs)
    if not ctx.oracle.rules_in_search and ctx.oracle.uses_rules(expectation):
        return RuleCase("rules_not_honoured", document, hint=NOT_HONOURED)
    if ctx.oracle.intersection_refused(expectation.sets):
        return RuleCase("intersection_too_large", document, hint="removes more than")
    if ctx.oracle.over_list_bound(expectation):
        return RuleCase("rule_list_too_long", document, hint="takes at most")
    return RuleCase("valid_rules", document, expectation)


def invalid_rule_case(src: Source, ctx: RuleContext, small: bool = True) -> RuleCase:
    """A document with one defect (`small`: none past a few hundred KB, so many may share a request)."""
    makers = _INVALID if small else {**_INVALID, "oversize": _oversize}
    kind = choice(src, sorted(makers))
    pairs = [("events", valid_document(src, ctx.item_ids, max_events=50)[0])]
    if chance(src, 50):
        pairs.append(("exclude", json_list(src, [str(i) for i in _exclusions(src, ctx, [], None)[:20]])))
    document, hint = makers[kind](src, ctx, pairs)
    return RuleCase(kind, document, hint=hint)


def _known_sets(src: Source, oracle: RuleOracle) -> list[str]:
    names = list(oracle.set_names)
    if not names or chance(src, 10):
        return []
    count = 1 if chance(src, 60) else min(scaled(src, 2, MAX_SETS_PER_REQUEST), len(names))
    chosen: list[str] = []
    while len(chosen) < count:
        name = choice(src, names)
        if name not in chosen:
            chosen.append(name)
    return chosen


def _exclusions(src: Source, ctx: RuleContext, history: Sequence[int], names: Sequence[str] | None) -> list[int]:
    """Ids to exclude: favourites, catalog ids, history ids, members of a named set, ids outside the catalog."""
    if chance(src, 5):
        return []
    size = MAX_EXCLUDED_ITEMS if chance(src, 5) else scaled(src, 1, MAX_EXCLUDED_ITEMS)
    if names and chance(src, 30):  # drain a named set: often fewer than K eligible items remain
        members = ctx.oracle.members(choice(src, names))
        take = len(members) if chance(src, 25) else scaled(src, 1, max(len(members), 1))
        return [int(i) for i in members[: min(size, take)]] or [int64(src)]
    pools = [p for p in (ctx.favourites, ctx.item_ids, history) if len(p)]
    ids = []
    for _ in range(size):
        ids.append(int(choice(src, choice(src, pools))) if pools and not chance(src, 20) else int64(src))
    return ids


def _render(src: Source, pairs: list[tuple[str, str]]) -> bytes:
    """`pairs` as one JSON object, in a random order."""
    order = list(pairs)
    for i in range(len(order) - 1, 0, -1):
        j = src.integer(0, i)
        order[i], order[j] = order[j], order[i]
    return json_object(src, order).encode("utf-8")


Pairs = list[tuple[str, str]]
Maker = Callable[[Source, RuleContext, Pairs], tuple[bytes, str]]


def _with(src: Source, pairs: Pairs, key: str, value: str) -> bytes:
    return _render(src, [(k, v) for k, v in pairs if k != key] + [(key, value)])


def _unknown_key(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    key = choice(src, _NEAR_KEYS) if chance(src, 60) else random_text(src, 20)
    if chance(src, 10):
        key = "k" * scaled(src, 100, 100_000)  # quoted clipped in the error
    if key in REQUEST_KEYS:
        key += "_"
    return _render(src, pairs + [(key, choice(src, ("1", "[]", "true", '"x"', "null")))]), "unknown key"


def _missing_events(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    return _render(src, [(k, v) for k, v in pairs if k != "events"]), 'lacks "events"'


def _events_not_list(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    return _with(src, pairs, "events", choice(src, _NOT_LISTS)), '"events" must be a list'


def _bad_event(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    events = [str(int(choice(src, ctx.item_ids))) for _ in range(scaled(src, 0, 8))] if ctx.item_ids else []
    events.insert(src.integer(0, len(events)), choice(src, _BAD_EVENTS))
    return _with(src, pairs, "events", json_list(src, events)), '"events": event '


def _bad_flag(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    return _with(src, pairs, "exclude_history", choice(src, _NOT_FLAGS)), '"exclude_history" must be true or false'


def _exclude_not_list(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    return _with(src, pairs, "exclude", choice(src, _NOT_LISTS)), '"exclude" must be a list'


def _bad_exclude_id(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    ids = [str(i) for i in _exclusions(src, ctx, [], None)[: scaled(src, 0, 50)]]
    ids.insert(src.integer(0, len(ids)), choice(src, _BAD_IDS))
    return _with(src, pairs, "exclude", json_list(src, ids)), '"exclude"['


def _too_many_ids(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    count = MAX_EXCLUDED_ITEMS + scaled(src, 1, 20_000)
    ids = [str(int(choice(src, ctx.item_ids)) if ctx.item_ids else i) for i in range(count)]
    return _with(src, pairs, "exclude", "[" + ",".join(ids) + "]"), f"the limit is {MAX_EXCLUDED_ITEMS}"


def _sets_not_list(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    value = choice(src, _NOT_LISTS + tuple(string(src, n) for n in ctx.oracle.set_names[:2]))
    return _with(src, pairs, "sets", value), '"sets" must be a list'


def _bad_set_name(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    names = [string(src, n) for n in _known_sets(src, ctx.oracle)[: MAX_SETS_PER_REQUEST - 1]]
    kind = src.integer(0, 3)
    if kind == 0:
        bad = choice(src, _BAD_NAMES)
    elif kind == 1:
        bad = '""'
    elif kind == 2:  # too long, up to half a megabyte
        bad = string(src, "s" * scaled(src, MAX_SET_NAME_LENGTH + 1, 500_000))
    else:
        bad = names[0] if names else '"a", "a"'
    names.insert(src.integer(0, len(names)), bad)
    return _with(src, pairs, "sets", json_list(src, names)), '"sets"['


def _too_many_sets(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    count = MAX_SETS_PER_REQUEST + scaled(src, 1, 200)
    known = list(ctx.oracle.set_names)
    names = known + [f"set_{i}" for i in range(count - len(known))]
    return _with(src, pairs, "sets", json_list(src, [string(src, n) for n in names[:count]])), (
        f"the limit is {MAX_SETS_PER_REQUEST}"
    )


def _unknown_set(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    known = list(ctx.oracle.set_names)
    near = [n.upper() for n in known] + [n + " " for n in known] + [n + "2" for n in known] + ["instock", "x=y"]
    name = choice(src, near) if chance(src, 50) else random_text(src, 40) or "unknown"
    if chance(src, 5):
        name = "u" * MAX_SET_NAME_LENGTH
    while name in known:
        name += "_"
    names = _known_sets(src, ctx.oracle)[: MAX_SETS_PER_REQUEST - 1]
    names.insert(src.integer(0, len(names)), name)
    hint = "unknown item set" if ctx.oracle.rules_in_search else NOT_HONOURED
    return _with(src, pairs, "sets", json_list(src, [string(src, n) for n in names])), hint


def _deep_value(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    depth = scaled(src, 2_000, 100_000)
    key = choice(src, REQUEST_KEYS)
    return _with(src, pairs, key, "[" * depth + "]" * depth), "nested too deeply"


def _not_json(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    key = choice(src, REQUEST_KEYS[1:])
    value = choice(src, ("NaN", "Infinity", "-Infinity"))
    return _with(src, pairs, key, value if chance(src, 50) else f"[{value}]"), "is not a JSON value"


def _oversize(src: Source, ctx: RuleContext, pairs: Pairs) -> tuple[bytes, str]:
    padding = " " * ((1 << 20) + scaled(src, 1, 1 << 20))
    return _with(src, pairs, "exclude", "[" + padding + "1]"), "the limit is"


_INVALID: dict[str, Maker] = {
    "unknown_key": _unknown_key,
    "missing_events": _missing_events,
    "events_not_list": _events_not_list,
    "bad_event": _bad_event,
    "bad_flag": _bad_flag,
    "exclude_not_list": _exclude_not_list,
    "bad_exclude_id": _bad_exclude_id,
    "too_many_ids": _too_many_ids,
    "sets_not_list": _sets_not_list,
    "bad_set_name": _bad_set_name,
    "too_many_sets": _too_many_sets,
    "unknown_set": _unknown_set,
    "deep_value": _deep_value,
    "not_json": _not_json,
}
