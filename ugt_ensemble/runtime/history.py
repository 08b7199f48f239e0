"""Parse one raw HISTORY document (UTF-8 JSON) into item ids and token types, and the rules it asks for.

A document is a JSON list of events, or an object `{"events": [...], "exclude_history": true,
"exclude": [item ids], "sets": ["name", ...]}` ("events" required; the rest optional; no other keys).
An event is an integer item id (event type "view") or an object
`{"item_id": <int>, "type": "view" | "click" | "cart" | "purchase"}` ("type" defaults to "view";
other keys are ignored, whatever valid JSON they hold). `parse_request` takes both forms;
`parse_history` (for callers that cannot honour rules) takes the list only and refuses an object.
Every problem raises `HistoryError` with a message meant for the client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

try:  # optional: 2-3x faster decoding; errors are always reported by the standard library's parser
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

from .contract import DEFAULT_EVENT_TYPE, EVENT_TYPES, TOKEN_TYPE_OF_EVENT
from .errors import RequestError, clip, quote
from .rule_request import MAX_EXCLUDED_ITEMS, MAX_SET_NAME_LENGTH, MAX_SETS_PER_REQUEST, NO_RULES, RuleRequest

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DEFAULT_TOKEN = TOKEN_TYPE_OF_EVENT[DEFAULT_EVENT_TYPE]
#: Digits of the longest int64 literal; a longer literal is never converted (see `_bounded_int`).
_INT64_DIGITS = 19
_LONG_DIGITS = re.compile(r"[0-9]{%d}" % (_INT64_DIGITS + 1))
#: The keys of the object form, "events" first (the only one required).
REQUEST_KEYS = ("events", "exclude_history", "exclude", "sets")


class HistoryError(RequestError):
    """A HISTORY document is malformed; the message says what and where."""


@dataclass(frozen=True)
class HistoryLimits:
    """Upper bounds on one request (a larger request is refused, not truncated)."""

    max_bytes: int = 1 << 20
    max_events: int = 100_000


@dataclass(frozen=True)
class History:
    """One user's events, oldest first: item ids (int64) and token types (int64), same length."""

    item_ids: np.ndarray
    token_types: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


def parse_history(raw: bytes | str, limits: HistoryLimits = HistoryLimits()) -> History:
    """Parse one HISTORY list of events; raises `HistoryError` naming the offending event.

    The object form (events with rules) is refused here, so that a step which cannot honour rules never
    drops them silently; `parse_request` takes both forms.
    """
    _check_size(raw, limits)
    if _fast_loads is not None:
        try:
            events = _fast_loads(raw)
        except ValueError:
            events = None
        if isinstance(events, list) and len(events) <= limits.max_events:
            history = _fast_arrays(events)
            if history is not None:
                return history
    return _parse_strict(raw, limits)


def parse_request(raw: bytes | str, limits: HistoryLimits = HistoryLimits()) -> tuple[History, RuleRequest]:
    """Parse one HISTORY document of either form into the history and the rules it asks for.

    A JSON list of events asks for no rules (`NO_RULES`); an object names them (see the module docstring).
    Set names are checked for form only (the served item sets are known to the caller). Raises
    `HistoryError` naming the key or event and the problem.
    """
    _check_size(raw, limits)
    if _fast_loads is not None:
        try:
            document = _fast_loads(raw)
        except ValueError:
            document = None
        if isinstance(document, dict):
            try:
                return _request_object(document, limits)
            except HistoryError:
                pass  # worded by the standard library's values (orjson reads a 30-digit literal as a float)
        elif isinstance(document, list) and len(document) <= limits.max_events:
            history = _fast_arrays(document)
            if history is not None:
                return history, NO_RULES
    return _parse_request_strict(raw, limits)


def _check_size(raw: bytes | str, limits: HistoryLimits) -> None:
    if len(raw) > limits.max_bytes:
        unit = "bytes" if isinstance(raw, bytes) else "characters"
        raise HistoryError(f"HISTORY is {len(raw)} {unit}; the limit is {limits.max_bytes}")


def _parse_strict(raw: bytes | str, limits: HistoryLimits) -> History:
    """The standard library's parser and a per-event check: the reference behaviour and its errors."""
    events = _decode(raw)
    if not isinstance(events, list):
        raise HistoryError(f"HISTORY must be a JSON list of events, got {_json_type(events)}")
    return _history(events, limits, "HISTORY")


def _parse_request_strict(raw: bytes | str, limits: HistoryLimits) -> tuple[History, RuleRequest]:
    """`parse_request` with the standard library's parser only (the reference for the fast path)."""
    document = _decode(raw)
    if isinstance(document, dict):
        return _request_object(document, limits)
    if not isinstance(document, list):
        raise HistoryError(
            f'HISTORY must be a JSON list of events or an object with "events", got {_json_type(document)}'
        )
    return _history(document, limits, "HISTORY"), NO_RULES


def _decode(raw: bytes | str) -> object:
    """The document as Python values, with errors worded for the client."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HistoryError(f"HISTORY is not valid UTF-8 (byte {exc.start})") from None
    # Integer literals are length-checked before conversion (only when a long digit run exists, so the
    # common case pays nothing); NaN and Infinity, which Python's parser accepts, are not JSON.
    bounded = _bounded_int if _LONG_DIGITS.search(raw) else None
    try:
        return json.loads(raw, parse_int=bounded, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"HISTORY is not valid JSON: {exc}") from None
    except RecursionError:
        raise HistoryError("HISTORY is not valid JSON: nested too deeply") from None


def _history(events: list, limits: HistoryLimits, where: str) -> History:
    """The events as arrays; `where` ("HISTORY" or the object's key) starts every error message."""
    if len(events) > limits.max_events:
        raise HistoryError(f"{where} has {len(events)} events; the limit is {limits.max_events}")
    history = _fast_arrays(events)
    if history is not None:
        return history
    prefix = "" if where == "HISTORY" else f"{where}: "
    for index, event in enumerate(events):  # something is wrong: find and name the first bad event
        try:
            _parse_event(index, event)
        except HistoryError as exc:
            raise HistoryError(f"{prefix}{exc}") from None
    raise HistoryError(f"{where} has an invalid event")  # unreachable: _parse_event raised


def _request_object(document: dict, limits: HistoryLimits) -> tuple[History, RuleRequest]:
    """The object form: every key known, "events" present, each rule of the right type and size."""
    unknown = [key for key in document if key not in REQUEST_KEYS]
    if unknown:
        names = ", ".join(quote(key, 40) for key in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise HistoryError(f"HISTORY has unknown key(s) {names}{more}; the keys are {', '.join(REQUEST_KEYS)}")
    if "events" not in document:
        raise HistoryError('HISTORY object lacks "events" (the list of events)')
    events = document["events"]
    if not isinstance(events, list):
        raise HistoryError(f'"events" must be a list of events, got {_json_type(events)}')
    history = _history(events, limits, '"events"')
    flag = document.get("exclude_history")
    if "exclude_history" in document and type(flag) is not bool:
        raise HistoryError(f'"exclude_history" must be true or false, got {_json_type(flag)}')
    rules = RuleRequest(flag, _excluded(document.get("exclude", [])), _set_names(document.get("sets", [])))
    return history, rules


def _excluded(values: object) -> np.ndarray:
    """The "exclude" list as int64 item ids."""
    if not isinstance(values, list):
        raise HistoryError(f'"exclude" must be a list of item ids, got {_json_type(values)}')
    if len(values) > MAX_EXCLUDED_ITEMS:
        raise HistoryError(f'"exclude" has {len(values)} item ids; the limit is {MAX_EXCLUDED_ITEMS}')
    if set(map(type, values)) <= {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    for index, value in enumerate(values):  # something is wrong: name the first bad id
        where = f'"exclude"[{index}]'
        if type(value) is _LongLiteral:
            raise HistoryError(f"{where} {value.describe()}")
        if type(value) is not int:
            raise HistoryError(f"{where} must be an integer item id, got {_json_type(value)}")
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise HistoryError(f"{where}: item id {clip(str(value))} is outside the int64 range")
    raise HistoryError('"exclude" has an invalid item id')  # unreachable: the loop raised


def _set_names(values: object) -> tuple[str, ...]:
    """The "sets" list: distinct, non-empty names of at most `MAX_SET_NAME_LENGTH` characters."""
    if not isinstance(values, list):
        raise HistoryError(f'"sets" must be a list of set names, got {_json_type(values)}')
    if len(values) > MAX_SETS_PER_REQUEST:
        raise HistoryError(f'"sets" has {len(values)} names; the limit is {MAX_SETS_PER_REQUEST}')
    for index, name in enumerate(values):
        where = f'"sets"[{index}]'
        if type(name) is not str:
            raise HistoryError(f"{where} must be a set name (a string), got {_json_type(name)}")
        if not name:
            raise HistoryError(f"{where} is empty; name an item set")
        if len(name) > MAX_SET_NAME_LENGTH:
            raise HistoryError(f"{where} is {len(name)} characters long; the limit is {MAX_SET_NAME_LENGTH}")
        if name in values[:index]:
            raise HistoryError(f"{where} repeats {quote(name)}")
    return tuple(values)


def _fast_arrays(events: list) -> History | None:
    """Whole-list comprehensions (no per-event function calls); None if any event is invalid."""
    kinds = set(map(type, events))
    if kinds <= {int}:  # bare item ids
        ids, token_types = events, [_DEFAULT_TOKEN] * len(events)
    elif kinds <= {int, dict}:
        ids = [e if type(e) is int else e.get("item_id") for e in events]
        try:
            kind = TOKEN_TYPE_OF_EVENT.get
            token_types = [
                _DEFAULT_TOKEN if type(e) is int else kind(e.get("type", DEFAULT_EVENT_TYPE)) for e in events
            ]
        except TypeError:  # an unhashable "type"
            return None
        if None in token_types or not set(map(type, ids)) <= {int}:
            return None
    else:
        return None
    try:
        return History(np.array(ids, dtype=np.int64), np.array(token_types, dtype=np.int64))
    except OverflowError:
        return None


def _parse_event(index: int, event: object) -> tuple[int, int]:
    if type(event) is _LongLiteral:
        raise HistoryError(f"event {index}: {event.describe()}")
    if type(event) is int:
        return _item_id(index, event), _DEFAULT_TOKEN
    if not isinstance(event, dict):
        raise HistoryError(f'event {index}: expected an item id or an object with "item_id", got {_json_type(event)}')
    if "item_id" not in event:
        raise HistoryError(f'event {index}: missing "item_id"')
    item_id = event["item_id"]
    if type(item_id) is _LongLiteral:
        raise HistoryError(f'event {index}: "item_id" {item_id.describe()}')
    if type(item_id) is not int:
        raise HistoryError(f'event {index}: "item_id" must be an integer, got {_json_type(item_id)}')
    kind = event.get("type", DEFAULT_EVENT_TYPE)
    token_type = TOKEN_TYPE_OF_EVENT.get(kind) if isinstance(kind, str) else None
    if token_type is None:
        raise HistoryError(f"event {index}: unknown event type {quote(kind)} (allowed: {', '.join(EVENT_TYPES)})")
    return _item_id(index, item_id), token_type


def _item_id(index: int, value: int) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise HistoryError(f"event {index}: item id {clip(str(value))} is outside the int64 range")
    return value


class _LongLiteral(str):
    """An integer literal longer than any int64, kept as text: refused as an item id, ignored elsewhere."""

    def describe(self) -> str:
        digits = len(self) - self.startswith("-")
        return f"is an integer literal of {digits} digits ({clip(self, 24)}); item ids are int64"


def _bounded_int(literal: str) -> int | _LongLiteral:
    """`json.loads` hook: never convert a literal longer than any int64 (its digits could be millions)."""
    if len(literal) - literal.startswith("-") > _INT64_DIGITS:
        return _LongLiteral(literal)
    return int(literal)


def _not_json(name: str) -> object:
    raise HistoryError(f"HISTORY is not valid JSON: {name} is not a JSON value")


def _json_type(value: object) -> str:
    if type(value) is _LongLiteral:
        return "integer"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
