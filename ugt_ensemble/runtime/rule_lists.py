"""Bounds on the rule lists (`rule_dead_pairs`, `rule_removed_items`) a step takes, per row and per call.

Every composing model is reachable through the open inference API, so each step bounds the lists it is sent:
- per row: `RuleListLimits.check_rows` refuses a row with more real entries than any request can produce
  (`RequestError` naming the tensor); `trim_padding` drops padding entries (parent `RULE_PADDING`) beyond a
  request's longest row, so a list padded to any width costs what its real entries cost;
- per call: `width_groups` puts requests whose lists differ much in width into different engine calls (one
  request's rows are never padded to another's width), and `rows_per_call` bounds rows x width per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .constraint_data import MAX_INTERSECTION_REMOVALS
from .contract import RULE_DEAD_PAIRS, RULE_PADDING, RULE_REMOVED_ITEMS
from .errors import RequestError
from .rule_request import MAX_EXCLUDED_ITEMS

Tensors = dict[str, np.ndarray]
LIST_NAMES = (RULE_DEAD_PAIRS, RULE_REMOVED_ITEMS)
#: Lists of at most this many entries share one width group (their cost is small beside the model's).
SHARED_WIDTH = 256


def request_list_limit(max_events: int) -> int:
    """The most items one request's rules can remove: its history (exclude-history, `max_events` events), its
    exclusions and the items its named sets' intersection removes (`MAX_INTERSECTION_REMOVALS`)."""
    return max_events + MAX_EXCLUDED_ITEMS + MAX_INTERSECTION_REMOVALS


@dataclass(frozen=True)
class RuleListLimits:
    """Most real entries of one row of each rule list (a row removes distinct catalog items, and its dead pairs
    are distinct (l1, l2) prefixes holding one of them)."""

    removed_items: int
    dead_pairs: int

    @classmethod
    def of(cls, num_items: int, num_pairs: int, max_rule_list: int) -> RuleListLimits:
        """The bounds for a catalog of `num_items` items and `num_pairs` prefixes, where a request removes at
        most `max_rule_list` items (the build's bound: `request_list_limit` or a TensorRT profile's)."""
        removed = max(1, min(num_items, max_rule_list))
        return cls(removed, max(1, min(num_pairs, removed)))

    def check_rows(self, tensors: Mapping[str, np.ndarray]) -> None:
        """`RequestError` naming the tensor when a row holds more real (non-padding) entries than its bound."""
        for name, bound in ((RULE_DEAD_PAIRS, self.dead_pairs), (RULE_REMOVED_ITEMS, self.removed_items)):
            counts = real_counts(tensors[name])
            if counts.size and counts.max() > bound:
                row = int(counts.argmax())
                raise RequestError(
                    f"{name}: row {row} holds {int(counts[row])} entries (parent != {RULE_PADDING}), at most {bound} "
                    "for this catalog and repository"
                )


def real_counts(entries: np.ndarray) -> np.ndarray:
    """Real entries (parent != `RULE_PADDING`) of each row of a (rows, E, 2) list."""
    return np.count_nonzero(entries[..., 0] != RULE_PADDING, axis=1)


def trim_padding(entries: np.ndarray) -> np.ndarray:
    """A (rows, E, 2) list with each row's real entries first, in order, at the width of the longest row (>= 1).
    Returned as it is when no padding column can go."""
    real = entries[..., 0] != RULE_PADDING
    counts = np.count_nonzero(real, axis=1)
    width = max(1, int(counts.max(initial=0)))
    if width == entries.shape[1]:
        return entries
    out = np.zeros((entries.shape[0], width, entries.shape[2]), dtype=entries.dtype)
    out[..., 0] = RULE_PADDING
    rows, cols = np.nonzero(real)
    rank = np.cumsum(real, axis=1)[rows, cols] - 1
    out[rows, rank] = entries[rows, cols]
    return out


def bound_rule_lists(tensors: Tensors, limits: RuleListLimits) -> Tensors:
    """`tensors` with both lists trimmed of surplus padding, after `limits.check_rows` (which may raise)."""
    limits.check_rows(tensors)
    return {**tensors, **{name: trim_padding(tensors[name]) for name in LIST_NAMES}}


def width_bucket(width: int) -> int:
    """0 for lists of at most `SHARED_WIDTH` entries; above, the power of two that bounds the width."""
    return 0 if width <= SHARED_WIDTH else (width - 1).bit_length()


def list_width(tensors: Mapping[str, np.ndarray]) -> int:
    """The widest rule list of one request (0 without rule tensors)."""
    return max((tensors[name].shape[1] for name in LIST_NAMES if name in tensors), default=0)


def width_groups(requests: Sequence[Mapping[str, np.ndarray]]) -> list[list[int]]:
    """Request indices grouped by `width_bucket` of their widest rule list, narrowest group first, so that
    padding a group to its widest member at most doubles any member's lists."""
    groups: dict[int, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(width_bucket(list_width(request)), []).append(i)
    return [groups[key] for key in sorted(groups)]


def rows_per_call(width: int, max_entries: int) -> int:
    """Rows of lists `width` wide one engine call may take so that rows x width <= `max_entries` (at least 1:
    a single row, bounded by `RuleListLimits`, runs alone)."""
    return max(1, max_entries // max(1, width))
