"""Read a shop's interactions export (CSV or Parquet) by its header into each user's history.

Columns are found by name (`InteractionFormat`): a user id (any text), an item id (an integer), optionally a
timestamp (ISO 8601 or epoch seconds/milliseconds: `interaction_fields`) and an event type (the served types
or the shop's own names through an event map). Without a timestamp column events keep the file's order;
without an event column every event is a view. A CSV's delimiter (comma, tab or semicolon) is read from its
header line. Every invalid field is reported (the first `MAX_REPORTED`) by file, line (CSV, as an editor
numbers it) or row (Parquet, from 1) and column, in one `InputFileError`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ugt_ensemble.catalog.catalog import MAX_REPORTED
from ugt_ensemble.catalog.files import PARQUET_SUFFIXES
from ugt_ensemble.catalog.quoting import plain_header, read_failure
from ugt_ensemble.errors import InputFileError, MissingDependencyError
from ugt_ensemble.model.interaction_fields import SKIPPED_TOKEN, event_tokens, parse_timestamps, quoted
from ugt_ensemble.runtime.contract import DEFAULT_EVENT_TYPE, TOKEN_TYPE_OF_EVENT
from ugt_ensemble.runtime.history import History

_DELIMITERS = (",", "\t", ";")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INTEGERS = re.compile(r"(?:[+-]?[0-9]{1,18}\n)*[+-]?[0-9]{1,18}")  # 18 digits: always within int64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class InteractionFormat:
    """Column names and the event map. A timestamp or event column that is absent is not used, unless
    `require_timestamp` / `require_event` (set when the name was given explicitly)."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    event: str = "event_type"
    require_timestamp: bool = False
    require_event: bool = False
    event_map: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Interactions:
    """Events in file order: user index (into `user_names`), item id, seconds, token type (none skipped)."""

    source: str
    user_names: list[str]
    users: np.ndarray
    items: np.ndarray
    seconds: np.ndarray
    token_types: np.ndarray
    skipped: int = 0  # events dropped by the event map (`skip`)

    def __len__(self) -> int:
        return len(self.items)

    def histories(self, known_items: np.ndarray | None = None, min_events: int = 2) -> list[History]:
        """Each user's events oldest first (ties in file order), only items in `known_items` (all if None),
        users with at least `min_events` of them; in order of first appearance in the file."""
        keep = np.ones(len(self), dtype=bool) if known_items is None else np.isin(self.items, known_items)
        rows = np.flatnonzero(keep)
        rows = rows[np.lexsort((rows, self.seconds[rows], self.users[rows]))]
        users = self.users[rows]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        groups = np.split(rows, starts[1:]) if len(rows) else []
        groups = [g for g in groups if len(g) >= min_events]
        groups.sort(key=lambda g: int(g.min()))
        return [History(self.items[g], self.token_types[g]) for g in groups]


def read_interactions(path: str | Path, spec: InteractionFormat = InteractionFormat()) -> Interactions:
    """Read and validate an interactions file (.parquet/.pq: Parquet, else CSV with a header line)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"interactions {path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        columns, labels = _read_parquet(path, spec)
    else:
        columns, labels = _read_csv(path, spec)
    return _validated(f"interactions {path}", columns, labels, spec)


def _wanted(header: list[str], spec: InteractionFormat, where: str) -> dict[str, str]:
    """role -> column name of the columns to read; InputFileError naming a missing required column."""
    roles = {"user": (spec.user, True, "--user-column"), "item": (spec.item, True, "--item-column"),
             "timestamp": (spec.timestamp, spec.require_timestamp, "--time-column"),
             "event": (spec.event, spec.require_event, "--event-column")}  # fmt: skip
    wanted = {}
    for role, (name, required, option) in roles.items():
        if name in header:
            wanted[role] = name
        elif required:
            shown = plain_header(header)
            has = f"the header has {shown}" if shown else "the first line is not a header of column names"
            raise InputFileError(f"{where}: no {role} column {quoted(name)} ({has}); name it with {option}")
    return wanted


def _read_csv(path: Path, spec: InteractionFormat) -> tuple[dict[str, list[str]], list[str]]:
    """The wanted columns as text and each data row's line label."""
    where = f"interactions {path}"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = handle.readline()
            delimiter = max(_DELIMITERS, key=first.count)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter)
            header = [name.strip() for name in next(reader, [])]
            wanted = _wanted(header, spec, where)
            positions = {role: header.index(name) for role, name in wanted.items()}
            columns: dict[str, list[str]] = {role: [] for role in wanted}
            labels: list[str] = []
            problems: list[str] = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    problems.append(f"line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
                    continue
                labels.append(f"line {reader.line_num}")
                for role, position in positions.items():
                    columns[role].append(row[position])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{where}: cannot read ({read_failure(exc)})") from None
    _raise_problems(where, problems)
    return columns, labels


def _read_parquet(path: Path, spec: InteractionFormat) -> tuple[dict[str, list[str]], list[str]]:
    """The wanted columns as text (None for nulls) and each row's label."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("reading Parquet needs pyarrow: pip install 'ugt-ensemble[parquet]'") from None
    where = f"interactions {path}"
    try:
        wanted = _wanted(list(pq.read_schema(path).names), spec, where)
        table = pq.read_table(path, columns=list(wanted.values()))
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(f"{where}: cannot read as Parquet ({exc})") from None
    columns = {}
    for role, name in wanted.items():
        column = table.column(name)
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        columns[role] = pc.cast(column, pa.string()).to_pylist()
    return columns, [f"row {i + 1}" for i in range(table.num_rows)]


def _validated(where: str, columns: dict[str, list], labels: list[str], spec: InteractionFormat) -> Interactions:
    """Typed arrays of the text columns; InputFileError listing every invalid field."""
    problems: list[tuple[int, str]] = []
    texts = {role: [("" if v is None else v) for v in values] for role, values in columns.items()}
    users = np.array([value.strip() for value in texts["user"]], dtype=object)
    problems += [(i, f"column {quoted(spec.user)} is empty") for i in np.flatnonzero(users == "")]
    items, bad_items = _integers(texts["item"])
    problems += [(i, f"column {quoted(spec.item)}: {reason}") for i, reason in bad_items]
    if "timestamp" in texts:
        seconds, bad_times = parse_timestamps(texts["timestamp"])
        problems += [(i, f"column {quoted(spec.timestamp)}: {reason}") for i, reason in bad_times]
    else:
        seconds = np.arange(len(labels), dtype=np.float64)
    tokens = np.full(len(labels), TOKEN_TYPE_OF_EVENT[DEFAULT_EVENT_TYPE], dtype=np.int64)
    if "event" in texts:
        tokens, unknown = event_tokens(texts["event"], spec.event_map)
        for name, rows in unknown.items():
            problems.append((rows[0], f"column {quoted(spec.event)}: event type {quoted(name)} is not mapped "
                             f"({len(rows)} event(s)); map it with --event-map '{name}=view' (or =click, =cart, "
                             "=purchase, =skip)"))  # fmt: skip
    problems.sort()
    _raise_problems(where, [f"{labels[i]}, {reason}" for i, reason in problems])
    if not labels:
        raise InputFileError(f"{where}: no interactions (only a header)")
    kept = tokens != SKIPPED_TOKEN
    names, user_index = np.unique(users[kept], return_inverse=True)
    return Interactions(where, names.tolist(), user_index.astype(np.int64), items[kept], seconds[kept],
                        tokens[kept], int((~kept).sum()))  # fmt: skip


def _integers(values: list[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """int64 item ids and the (index, reason) of each field that is not one (digits with an optional sign)."""
    stripped = [value.strip() for value in values]
    if _INTEGERS.fullmatch("\n".join(stripped)):
        return np.array(stripped, dtype=np.int64), []
    ids = np.zeros(len(values), dtype=np.int64)
    problems = []
    for index, value in enumerate(stripped):
        if not value:
            problems.append((index, "is empty"))
        elif not _INTEGER.fullmatch(value):
            problems.append((index, f"{quoted(value)} is not an integer item id"))
        elif not _INT64_MIN <= int(value) <= _INT64_MAX:
            problems.append((index, f"{quoted(value)} is outside the int64 range"))
        else:
            ids[index] = int(value)
    return ids, problems


def _raise_problems(where: str, problems: list[str]) -> None:
    if problems:
        listed = "\n  ".join(problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise InputFileError(f"{where}: {len(problems)} invalid row(s):\n  {listed}{more}")
