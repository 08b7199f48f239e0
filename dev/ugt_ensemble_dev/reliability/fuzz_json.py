"""JSON fragments for the HISTORY fuzzer, drawn from any `Source` of randomness.

Every fragment here is valid JSON text whose meaning is known: `valid_document` returns the
document with the item ids and token types that a correct parser must return for it. The hostile
mutations that turn such documents into invalid ones live in `fuzz`.
"""

from __future__ import annotations

import json
import random
from typing import Callable, Protocol, Sequence, TypeVar

from ugt_ensemble.runtime.contract import DEFAULT_EVENT_TYPE, EVENT_TYPES, TOKEN_TYPE_OF_EVENT

T = TypeVar("T")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: JSON's four whitespace characters (RFC 8259); nothing else may separate tokens.
WHITESPACE = " \t\n\r"
#: Characters of generated strings: escapes, control characters, non-ASCII, lone surrogates.
ALPHABET = 'abcXYZ019 _-"\\/\b\f\n\r\t\x00\x1f\x7f\u00e9\u00df\u4e2d\U0001f600\u2028\ufeff\ud800\udfff'
#: Keys that are not "item_id" or "type" (so they are ignored); some look alike.
IGNORED_KEYS = ("ts", "score", "meta", "note", "Item_id", "item_id ", "TYPE", "\u00e9v\u00e9nement", "")
#: Deepest nesting inside an ignored value that a valid document holds (parsers refuse far deeper ones).
MAX_VALID_DEPTH = 256


class Source(Protocol):
    """Randomness: a seeded `random.Random` (`RandomSource`) or Hypothesis's `draw` (shrinkable)."""

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high], both included."""

    def blob(self, size: int) -> bytes:
        """`size` arbitrary bytes."""


class RandomSource:
    """A `Source` from a seeded `random.Random`: reproducible, no Hypothesis needed."""

    def __init__(self, seed: int | random.Random) -> None:
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def blob(self, size: int) -> bytes:
        return self.rng.randbytes(size)


class DrawSource:
    """A `Source` from Hypothesis's `draw` (inside `st.composite`): every choice shrinks."""

    def __init__(self, draw: Callable) -> None:
        from hypothesis import strategies

        self.draw, self.st = draw, strategies

    def integer(self, low: int, high: int) -> int:
        return self.draw(self.st.integers(low, high))

    def blob(self, size: int) -> bytes:
        return self.draw(self.st.binary(min_size=size, max_size=size))


def choice(src: Source, options: Sequence[T]) -> T:
    return options[src.integer(0, len(options) - 1)]


def chance(src: Source, percent: int) -> bool:
    return src.integer(1, 100) <= percent


def scaled(src: Source, low: int, high: int) -> int:
    """An integer in [low, high], log-uniform-ish: small values as likely as huge ones."""
    bits = src.integer(0, max(high - low, 1).bit_length())
    return src.integer(low, min(high, low + (1 << bits) - 1))


def ws(src: Source) -> str:
    """Nothing (mostly) or a short run of JSON whitespace."""
    if chance(src, 70):
        return ""
    return "".join(choice(src, WHITESPACE) for _ in range(src.integer(1, 3)))


def json_list(src: Source, items: Sequence[str]) -> str:
    """`[a, b, ...]` with random whitespace around every token."""
    return "[" + ws(src) + ",".join(ws(src) + item + ws(src) for item in items) + ws(src) + "]"


def json_object(src: Source, pairs: Sequence[tuple[str, str]]) -> str:
    """`{"k": v, ...}` from (key text, value fragment) pairs, with random whitespace."""
    members = [ws(src) + string(src, key) + ws(src) + ":" + ws(src) + value + ws(src) for key, value in pairs]
    return "{" + ",".join(members) + ws(src) + "}"


def string(src: Source, text: str) -> str:
    """A JSON string literal of `text`: escaped as ASCII, or raw UTF-8 where it has no lone surrogate."""
    surrogate = any("\ud800" <= c <= "\udfff" for c in text)
    return json.dumps(text, ensure_ascii=surrogate or chance(src, 50))


def random_text(src: Source, max_length: int = 12) -> str:
    return "".join(choice(src, ALPHABET) for _ in range(scaled(src, 0, max_length)))


def int64(src: Source) -> int:
    """An int64 item id: small, mid-sized, negative, or at the very ends of the range."""
    kind = src.integer(0, 5)
    if kind == 0:
        return choice(src, (INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 0, -1))
    if kind == 1:
        return src.integer(INT64_MIN, INT64_MAX)
    return scaled(src, 0, 10**6) * (-1 if kind == 2 else 1)


def int_literal(src: Source, value: int) -> str:
    return "-0" if value == 0 and chance(src, 10) else str(value)


def ignored_value(src: Source, depth: int = 0) -> str:
    """Any JSON value that a history may carry under an ignored key (no integer over 18 digits)."""
    kind = src.integer(0, 9 if depth < 3 else 6)
    if kind == 0:
        return str(src.integer(-(10**18) + 1, 10**18 - 1))
    if kind == 1:
        return choice(src, ("1.5", "-0.0", "1e400", "2.5E-3", "0.1", "123456789012345678901234.5", "1E+30"))
    if kind in (2, 3):
        return string(src, random_text(src))
    if kind == 4:
        return choice(src, ("true", "false", "null"))
    if kind == 5:
        levels = scaled(src, 1, MAX_VALID_DEPTH)
        return "[" * levels + "]" * levels
    if kind == 6:
        return "{}"
    if kind in (7, 8):
        return json_list(src, [ignored_value(src, depth + 1) for _ in range(src.integer(0, 3))])
    return json_object(src, [(choice(src, IGNORED_KEYS), ignored_value(src, depth + 1)) for _ in range(2)])


def event_type(src: Source, name: str) -> str:
    """The JSON string of an event type, sometimes with one character written as a \\u escape."""
    if not chance(src, 20):
        return string(src, name)
    i = src.integer(0, len(name) - 1)
    return '"' + name[:i] + f"\\u{ord(name[i]):04x}" + name[i + 1 :] + '"'


def event(src: Source, item_ids: Sequence[int] | None) -> tuple[str, int, int]:
    """One valid event: (JSON fragment, item id, token type)."""
    item = int(choice(src, item_ids)) if item_ids is not None and chance(src, 80) else int64(src)
    if chance(src, 40):
        return int_literal(src, item), item, TOKEN_TYPE_OF_EVENT[DEFAULT_EVENT_TYPE]
    pairs = [("item_id", int_literal(src, item))]
    name = DEFAULT_EVENT_TYPE
    if chance(src, 75):
        name = choice(src, EVENT_TYPES)
        pairs.append(("type", event_type(src, name)))
    for _ in range(src.integer(0, 2) if chance(src, 30) else 0):
        pairs.append((choice(src, IGNORED_KEYS), ignored_value(src)))
    order = src.integer(0, len(pairs) - 1)  # rotate: "item_id" need not come first
    return json_object(src, pairs[order:] + pairs[:order]), item, TOKEN_TYPE_OF_EVENT[name]


def valid_document(src: Source, item_ids: Sequence[int] | None, max_events: int = 3000) -> tuple[str, list, list]:
    """A valid HISTORY document and the (item ids, token types) it holds.

    Mostly 0-30 events; sometimes a drawn run of events repeated up to `max_events` (past the
    encoder's 1024), so long documents cost few draws.
    """
    events = [event(src, item_ids) for _ in range(scaled(src, 0, 30))]
    inner = ",".join(ws(src) + fragment + ws(src) for fragment, _, _ in events)
    if events and chance(src, 10):
        repeats = max(1, scaled(src, 1, max_events) // len(events))
        inner, events = ",".join([inner] * repeats), events * repeats
    text = "[" + ws(src) + inner + ws(src) + "]"
    return text, [e[1] for e in events], [e[2] for e in events]
