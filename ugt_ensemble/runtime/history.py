"""Parse one raw HISTORY document (UTF-8 JSON list of events) into item ids and token types.

An event is an integer item id (event type "view") or an object
`{"item_id": <int>, "type": "view" | "click" | "cart" | "purchase"}` ("type" defaults to "view";
other keys are ignored). Every problem raises `HistoryError` with a message meant for the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .batching import RequestError
from .contract import DEFAULT_EVENT_TYPE, EVENT_TYPES, TOKEN_TYPE_OF_EVENT

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
    """Parse one HISTORY document; raises `HistoryError` naming the offending event."""
    if isinstance(raw, bytes):
        if len(raw) > limits.max_bytes:
            raise HistoryError(f"HISTORY is {len(raw)} bytes; the limit is {limits.max_bytes}")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HistoryError(f"HISTORY is not valid UTF-8 (byte {exc.start})") from None
    elif len(raw) > limits.max_bytes:
        raise HistoryError(f"HISTORY is {len(raw)} characters; the limit is {limits.max_bytes}")
    try:
        events = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"HISTORY is not valid JSON: {exc}") from None
    except RecursionError:
        raise HistoryError("HISTORY is not valid JSON: nested too deeply") from None
    if not isinstance(events, list):
        raise HistoryError(f"HISTORY must be a JSON list of events, got {_json_type(events)}")
    if len(events) > limits.max_events:
        raise HistoryError(f"HISTORY has {len(events)} events; the limit is {limits.max_events}")
    return _events_to_arrays(events)


def _events_to_arrays(events: list) -> History:
    if all(type(event) is int for event in events):  # fast path: bare item ids
        item_ids = _int64_array(events)
        types = np.full(len(events), TOKEN_TYPE_OF_EVENT[DEFAULT_EVENT_TYPE], dtype=np.int64)
        return History(item_ids, types)
    item_ids = np.empty(len(events), dtype=np.int64)
    types = np.empty(len(events), dtype=np.int64)
    for i, event in enumerate(events):
        item_ids[i], types[i] = _parse_event(i, event)
    return History(item_ids, types)


def _parse_event(index: int, event: object) -> tuple[int, int]:
    if type(event) is int:
        return _item_id(index, event), TOKEN_TYPE_OF_EVENT[DEFAULT_EVENT_TYPE]
    if not isinstance(event, dict):
        raise HistoryError(f'event {index}: expected an item id or an object with "item_id", got {_json_type(event)}')
    if "item_id" not in event:
        raise HistoryError(f'event {index}: missing "item_id"')
    item_id = event["item_id"]
    if type(item_id) is not int:
        raise HistoryError(f'event {index}: "item_id" must be an integer, got {_json_type(item_id)}')
    kind = event.get("type", DEFAULT_EVENT_TYPE)
    token_type = TOKEN_TYPE_OF_EVENT.get(kind) if isinstance(kind, str) else None
    if token_type is None:
        raise HistoryError(f"event {index}: unknown event type {json.dumps(kind)} (allowed: {', '.join(EVENT_TYPES)})")
    return _item_id(index, item_id), token_type


def _item_id(index: int, value: int) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise HistoryError(f"event {index}: item id {value} is outside the int64 range")
    return value


def _int64_array(values: list[int]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        for i, value in enumerate(values):
            _item_id(i, value)
        raise


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
