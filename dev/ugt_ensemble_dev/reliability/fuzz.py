"""Seeded generators of hostile HISTORY documents, each knowing whether it is valid.

A case is a valid document (with the item ids and token types it holds) or a valid one with exactly
one defect: a wrong event shape, an unknown event type of any length, an integer past int64 or with
thousands of digits, a float, a NaN/Infinity literal, truncation, garbage, invalid UTF-8, deep
nesting, a document that is not a list, or a payload past the size or event limit. Valid documents
near those limits are cases too.

Two sources of randomness drive the same builders: `RandomSource(seed)` (stdlib `random`, fast and
reproducible, for the server-side driver) and `case_strategy()` (Hypothesis draws, shrinkable, for
property tests). The oracle is the wire contract in README.md, not the parser under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ugt_ensemble.runtime.contract import EVENT_TYPES
from ugt_ensemble.runtime.history import HistoryLimits
from ugt_ensemble_dev.reliability.fuzz_json import (
    IGNORED_KEYS,
    INT64_MAX,
    INT64_MIN,
    DrawSource,
    RandomSource,
    Source,
    chance,
    choice,
    event,
    json_list,
    json_object,
    random_text,
    scaled,
    string,
    valid_document,
)

#: Stands for the defect in a document while it is built (never part of valid JSON text).
_HOLE = "\x00"
_BAD_SHAPES = tuple(
    '[] [1] "7" 1.5 true false null {} {"type":"view"} {"Item_id":1} {"item_id":"7"} {"item_id":1.0} '
    '{"item_id":true} {"item_id":null} {"item_id":[1]} {"item_id":{}} {"item_id":1e3} {"item_id":-0.0}'.split()
)
_NOT_TYPES = ("1", "null", "true", "[]", '["view"]', "{}", '{"type":"view"}', "1.5")
_NOT_JSON = ("NaN", "Infinity", "-Infinity")
_NOT_JSON_WORDS = ("nan", "inf", "-inf", "undefined", "None", "True", "'view'", "0x10", "+1", "01", ".5", "1.")
_FLOATS = ("1.0", "1e3", "-0.0", "1E+2", "12.5", "0.5e-1", "1e400", "-1e-400", "9223372036854775807.0")
#: Invalid UTF-8: stray bytes, overlong, truncated, an encoded surrogate, past U+10FFFF, 5-byte forms.
_BAD_UTF8 = tuple(
    b"\xff \xfe \x80 \xc0\x80 \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xf8\x88\x80\x80\x80 \xef\xbf".split()
)
_LEADING = (b"x", b"}", b"{", b"@", b"\x00", b"\xff", b"[", b'"', b"-", b"0", b"t", b"\xef\xbb\xbf", b"\x0b", b"/")
_TRAILING = (b"x", b"]", b",", b"1", b"[]", b"\x00", b"\xff", b"}", b"//", b"\x0c", b'"')
_NOT_LISTS = ('{"item_id":1}', '"[1,2]"', "1", "-1", "1.5", "null", "true", "", "   ", "{}", '{"events":[1]}')


@dataclass(frozen=True)
class FuzzCase:
    """One HISTORY document; valid ones carry what a correct parser returns, invalid ones a `hint`
    (a substring their error message must contain) where the defect determines the message."""

    kind: str
    document: bytes
    valid: bool
    item_ids: list[int] = field(default_factory=list)
    token_types: list[int] = field(default_factory=list)
    hint: str | None = None

    def __repr__(self) -> str:  # documents can be megabytes: show their head only
        head = self.document[:160] + (b"..." if len(self.document) > 160 else b"")
        return f"FuzzCase({self.kind}, valid={self.valid}, {len(self.document)} bytes: {head!r}, hint={self.hint!r})"


@dataclass(frozen=True)
class Context:
    """What every builder may use: the item ids to favour (e.g. a catalog's) and the limits."""

    item_ids: Sequence[int] | None
    limits: HistoryLimits


Built = tuple[bytes, str | None]
Builder = Callable[[Source, "Context"], FuzzCase]
#: Every kind of case, in the order defined below: (weight, builder).
KINDS: dict[str, tuple[int, Builder]] = {}


def _kind(weight: int, valid: bool = False) -> Callable[[Callable], Callable]:
    """Register a builder as a kind of case; an invalid kind's builder returns (document, hint)."""

    def register(builder: Callable) -> Callable:
        name = builder.__name__.lstrip("_")

        def build(src: Source, ctx: Context) -> FuzzCase:
            if valid:
                return builder(src, ctx)
            document, hint = builder(src, ctx)
            return FuzzCase(name, document, False, hint=hint)

        KINDS[name] = (weight, build)
        return builder

    return register


def _with_defect(src: Source, ctx: Context, defect: str | bytes) -> bytes:
    """A valid list of events with `defect` (a fragment of JSON text, or raw bytes) as one more event."""
    events = [event(src, ctx.item_ids)[0] for _ in range(scaled(src, 0, 10))]
    events.insert(src.integer(0, len(events)), _HOLE)
    raw = defect if isinstance(defect, bytes) else defect.encode("utf-8")
    return json_list(src, events).encode("utf-8").replace(_HOLE.encode(), raw)


def _item(src: Source, ctx: Context) -> str:
    return str(event(src, ctx.item_ids)[1])


def _digits(src: Source, count: int) -> str:
    """A run of `count` digits (no leading zero), cheap to draw however long."""
    head = "".join(str(b % 10) for b in src.blob(min(count - 1, 24)))
    body = (head * (count // max(len(head), 1) + 1))[: count - 1] if head else ""
    return str(src.integer(1, 9)) + body


def _in_event_slot(src: Source, ctx: Context, value: str, ignored: bool = True) -> str:
    """`value` as a bare event, as the item id, or (if `ignored`) under an ignored key."""
    slot = src.integer(0, 2 if ignored else 1)
    if slot == 0:
        return value
    if slot == 1:
        return json_object(src, [("item_id", value), ("type", string(src, choice(src, EVENT_TYPES)))])
    return json_object(src, [("item_id", _item(src, ctx)), (choice(src, IGNORED_KEYS), value)])


@_kind(8)
def _bad_shape(src: Source, ctx: Context) -> Built:
    return _with_defect(src, ctx, choice(src, _BAD_SHAPES)), "event "


@_kind(8)
def _unknown_type(src: Source, ctx: Context) -> Built:
    kind = src.integer(0, 3)
    if kind == 0:
        value = choice(src, _NOT_TYPES)
    else:
        name = choice(src, EVENT_TYPES)
        text = choice(src, (name.upper(), name.title(), name + " ", " " + name, name + "\x00", name + "s", ""))
        if kind == 2:  # any length up to 20,000 characters
            base, length = random_text(src) or "x", scaled(src, 1, 20_000)
            text = (base * (length // len(base) + 1))[:length]
        if text in EVENT_TYPES:
            text += "x"
        value = string(src, text)
    typed = json_object(src, [("item_id", _item(src, ctx)), ("type", value)])
    return _with_defect(src, ctx, typed), "unknown event type"


@_kind(8)
def _int_overflow(src: Source, ctx: Context) -> Built:
    kind = src.integer(0, 2)
    if kind == 0:  # just past either end of int64
        past = scaled(src, 0, 10**9)
        value = str(choice(src, (INT64_MAX + 1 + past, INT64_MIN - 1 - past)))
    else:
        value = ("-" if chance(src, 30) else "") + _digits(src, scaled(src, 20, 6000))
    if kind == 2:  # an item id of hundreds of digits is refused without converting it
        value = _digits(src, scaled(src, 400, 6000))
        return _with_defect(src, ctx, _in_event_slot(src, ctx, value, ignored=False)), "integer literal"
    return _with_defect(src, ctx, _in_event_slot(src, ctx, value, ignored=False)), "int64"


@_kind(6)
def _not_json_value(src: Source, ctx: Context) -> Built:
    if chance(src, 60):
        return _with_defect(src, ctx, _in_event_slot(src, ctx, choice(src, _NOT_JSON))), "is not a JSON value"
    return _with_defect(src, ctx, _in_event_slot(src, ctx, choice(src, _NOT_JSON_WORDS))), "not valid JSON"


@_kind(4)
def _float_id(src: Source, ctx: Context) -> Built:
    value = choice(src, _FLOATS)
    if chance(src, 50):
        return _with_defect(src, ctx, value), "event "
    return _with_defect(src, ctx, json_object(src, [("item_id", value)])), "event "


@_kind(6)
def _truncated(src: Source, ctx: Context) -> Built:
    document = valid_document(src, ctx.item_ids, max_events=200)[0].encode("utf-8")
    return document[: src.integer(0, document.rindex(b"]") - 1)], None  # the list is never closed


@_kind(6)
def _garbage(src: Source, ctx: Context) -> Built:
    document = valid_document(src, ctx.item_ids, max_events=200)[0].encode("utf-8")
    kind = src.integer(0, 3)
    if kind == 0:
        return choice(src, _LEADING) + document, None
    if kind == 1:
        return document + choice(src, _TRAILING), None
    if kind == 2:  # a trailing comma, an empty element, or a comment inside the list
        return _with_defect(src, ctx, choice(src, (",", "/* x */ 1", "// x\n1"))), None
    return choice(src, (b"\x00", b"\x01", b"\xfe", b"#", b"x")) + src.blob(scaled(src, 0, 4096)), None


@_kind(6)
def _bad_utf8(src: Source, ctx: Context) -> Built:
    bad = choice(src, _BAD_UTF8)
    if chance(src, 50):  # hidden inside a string under an ignored key
        head = '{"item_id":' + _item(src, ctx) + ',"note":"a'
        return _with_defect(src, ctx, head.encode() + bad + b'b"}'), "not valid UTF-8"
    return _with_defect(src, ctx, bad), "not valid UTF-8"


@_kind(5)
def _deep_nesting(src: Source, ctx: Context) -> Built:
    kind = src.integer(0, 2)
    if kind == 0:  # a list as an event, however deep
        depth = scaled(src, 1, 200_000)
        return _with_defect(src, ctx, "[" * depth + "1" + "]" * depth), None
    if kind == 1:  # under an ignored key, far deeper than any parser's limit
        depth = scaled(src, 2_000, 100_000)
        opener, closer = choice(src, (("[", "]"), ('{"a":', "}")))
        value = opener * depth + ("1" if opener != "[" else "") + closer * depth
        return _with_defect(src, ctx, _in_event_slot(src, ctx, value)), "nested too deeply"
    return b"[" * scaled(src, 1, 200_000), None  # never closed


@_kind(4)
def _not_a_list(src: Source, ctx: Context) -> Built:
    text = choice(src, _NOT_LISTS) if chance(src, 70) else event(src, ctx.item_ids)[0]
    return text.encode("utf-8"), None


@_kind(2)
def _oversize(src: Source, ctx: Context) -> Built:
    if chance(src, 50):  # too many bytes
        text = valid_document(src, ctx.item_ids, max_events=100)[0]
        extra = ctx.limits.max_bytes + scaled(src, 1, 2 << 20) - len(text.encode("utf-8"))
        return (text[:-1] + " " * max(extra, 1) + "]").encode("utf-8"), "the limit is"
    count = ctx.limits.max_events + scaled(src, 1, 50_000)
    return ("[" + ",".join(["7"] * count) + "]").encode(), "the limit is"


@_kind(36, valid=True)
def _valid(src: Source, ctx: Context) -> FuzzCase:
    text, ids, types = valid_document(src, ctx.item_ids)
    document = text.encode("utf-8")
    if len(document) > ctx.limits.max_bytes:  # long runs of bulky events: valid JSON, but too large
        return FuzzCase("oversize", document, False, hint="the limit is")
    return FuzzCase("valid", document, True, ids, types)


@_kind(2, valid=True)
def _valid_at_limit(src: Source, ctx: Context) -> FuzzCase:
    """Valid documents at the edges: exactly (or nearly) `max_bytes` long, or exactly `max_events` events."""
    if chance(src, 50):
        text, ids, types = valid_document(src, ctx.item_ids, max_events=20_000)
        size = len(text.encode("utf-8"))
        pad = max(ctx.limits.max_bytes - scaled(src, 0, 4096) - size, 0)
        if size > ctx.limits.max_bytes:
            return _valid(src, ctx)
        return FuzzCase("valid_at_limit", (text[:-1] + " " * pad + "]").encode("utf-8"), True, ids, types)
    count = ctx.limits.max_events - scaled(src, 0, 10)
    small = [int(i) for i in (ctx.item_ids[:50] if ctx.item_ids is not None else ()) if 0 <= i < 10**5]
    item = choice(src, small or [7])
    document = ("[" + ",".join([str(item)] * count) + "]").encode()
    return FuzzCase("valid_at_limit", document, True, [item] * count, [1] * count)


#: Kinds whose documents stay well under the size limit (for requests that carry many histories).
SMALL_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k not in ("valid_at_limit", "oversize"))


def generate_case(
    src: Source,
    item_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
    limits: HistoryLimits = HistoryLimits(),
) -> FuzzCase:
    """One case of a kind drawn by weight among `kinds` (default: all)."""
    names = list(kinds or KINDS)
    ticket = src.integer(1, sum(KINDS[n][0] for n in names))
    for name in names:
        ticket -= KINDS[name][0]
        if ticket <= 0:
            return KINDS[name][1](src, Context(item_ids, limits))
    raise AssertionError("unreachable")


def generate_cases(
    count: int, seed: int, item_ids: Sequence[int] | None = None, kinds: Sequence[str] | None = None
) -> Iterator[FuzzCase]:
    """`count` cases from one seed (the same seed gives the same cases)."""
    src = RandomSource(seed)
    for _ in range(count):
        yield generate_case(src, item_ids, kinds)


def case_strategy(item_ids: Sequence[int] | None = None, kinds: Sequence[str] | None = None) -> Any:
    """A Hypothesis strategy of `FuzzCase`s (Hypothesis is imported only here)."""
    from hypothesis import strategies as st

    return st.composite(lambda draw: generate_case(DrawSource(draw), item_ids, kinds))()
