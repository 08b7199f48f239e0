"""The fields of an interactions export that need more than `int()`: timestamps and event types.

- A timestamp is ISO 8601 (`2024-03-01T12:30:00Z`, `2024-03-01 12:30:00+02:00`, `2024-03-01`; a time without
  an offset is UTC) or a number of seconds since the epoch; a number of `EPOCH_MILLISECONDS_FROM` or more is
  milliseconds (1e11 seconds is the year 5138, 1e11 milliseconds is March 1973).
- An event type is one of the served types (view, click, cart, purchase) or a name of the shop's own that an
  event map (`"detail=view,addtocart=cart,transaction=purchase"`) maps to one of them or to `skip` (the
  event is dropped). Names compare without case and surrounding spaces.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import numpy as np

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.contract import EVENT_TYPES, TOKEN_TYPE_OF_EVENT
from ugt_ensemble.runtime.errors import clip

#: Epoch numbers at or above this are milliseconds.
EPOCH_MILLISECONDS_FROM = 1e11
#: The event-map target that drops an event type.
SKIP = "skip"
#: Token type of a skipped event (never packed: the reader drops these events).
SKIPPED_TOKEN = -1
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
#: A value an error may quote: a short token of what a time, a number or an event name is made of.
_QUOTABLE = re.compile(r"[A-Za-z0-9_.:+/ -]{1,40}")


def quoted(value: str) -> str:
    """`value` as an error shows it: quoted when short and plain, else described."""
    return repr(value) if _QUOTABLE.fullmatch(value) else f"a value of {len(value)} characters"


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch (UTC) of one field; ValueError saying why not (without the value)."""
    value = text.strip()
    if not value:
        raise ValueError("is empty")
    if _NUMBER.fullmatch(value):
        number = float(value)
        return number / 1000.0 if abs(number) >= EPOCH_MILLISECONDS_FROM else number
    iso = value[:-1] + "+00:00" if value[-1] in "zZ" else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError("is neither an ISO 8601 time nor epoch seconds or milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_timestamps(values: list[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Seconds (float64) of each field and the (index, reason) of each bad one (their seconds are NaN)."""
    try:  # a column of plain numbers: one vectorised conversion
        numbers = np.array(values, dtype=np.float64)
    except ValueError:
        numbers = None
    if numbers is not None and np.isfinite(numbers).all() and all(map(_NUMBER.fullmatch, map(str.strip, values))):
        return np.where(np.abs(numbers) >= EPOCH_MILLISECONDS_FROM, numbers / 1000.0, numbers), []
    seconds = np.full(len(values), np.nan)
    problems: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        try:
            seconds[index] = parse_timestamp(value)
        except ValueError as exc:
            problems.append((index, f"{quoted(value.strip())} {exc}" if value.strip() else str(exc)))
        except (OverflowError, OSError):
            problems.append((index, f"{quoted(value.strip())} is outside the supported range of times"))
        else:
            if not math.isfinite(seconds[index]):
                problems.append((index, f"{quoted(value.strip())} is not a finite time"))
    return seconds, problems


def parse_event_map(text: str, option: str = "--event-map") -> dict[str, str]:
    """`"detail=view,addtocart=cart"` -> {"detail": "view", "addtocart": "cart"} (names lower-cased); each
    target is a served event type or `skip`. ConfigError naming the entry otherwise."""
    mapping: dict[str, str] = {}
    targets = (*EVENT_TYPES, SKIP)
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, equals, target = (piece.strip() for piece in entry.partition("="))
        if not equals or not name:
            raise ConfigError(f"{option}: {clip(repr(entry), 60)} is not NAME=TYPE (e.g. addtocart=cart)")
        if target.lower() not in targets:
            raise ConfigError(
                f"{option}: {clip(repr(entry), 60)} maps to {clip(repr(target), 40)}; the types are "
                f"{', '.join(targets)}"
            )
        if name.lower() in mapping:
            raise ConfigError(f"{option}: {clip(repr(name), 40)} is mapped twice")
        mapping[name.lower()] = target.lower()
    return mapping


def event_tokens(names: list[str], mapping: dict[str, str]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Token types (int64, `SKIPPED_TOKEN` for skipped events) of event names, and each name that neither
    `mapping` nor the served types know, with the indices where it occurs."""
    known = {name: TOKEN_TYPE_OF_EVENT[name] for name in EVENT_TYPES}
    known.update({name: TOKEN_TYPE_OF_EVENT.get(target, SKIPPED_TOKEN) for name, target in mapping.items()})
    tokens = np.empty(len(names), dtype=np.int64)
    unknown: dict[str, list[int]] = {}
    cache: dict[str, int | None] = {}
    for index, raw in enumerate(names):
        token = cache.get(raw, 0)
        if token == 0:
            token = cache[raw] = known.get(raw.strip().lower())
        if token is None:
            unknown.setdefault(raw.strip(), []).append(index)
            token = SKIPPED_TOKEN
        tokens[index] = token
    return tokens, unknown
