"""`RuleRequest`: the business rules one request asks for (what the HISTORY document's object form carries).

A HISTORY document is either a JSON list of events (no rules beyond the repository's defaults) or an object
`{"events": [...], "exclude_history": true, "exclude": [item ids], "sets": ["in_stock", "category=books"]}`
(every key but "events" optional). See README, "Business rules".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, clip

#: Most item ids one request may exclude, and most item sets it may name (requests beyond are refused).
MAX_EXCLUDED_ITEMS = 1000
MAX_SETS_PER_REQUEST = 8
#: Item set names: "in_stock", "category=books", "region:eu-west" (what a defined set may be called).
SET_NAME = re.compile(r"[A-Za-z0-9_.:=-]+")
MAX_SET_NAME_LENGTH = 200


@dataclass(frozen=True)
class RuleRequest:
    """The rules of one request.

    Attributes:
        exclude_history: drop the items of the sent history; None: the repository's default.
        exclude: int64 item ids never to return (ids outside the catalog are ignored).
        sets: names of item sets; only items in every named set are returned (none: the whole catalog).
    """

    exclude_history: bool | None = None
    exclude: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sets: tuple[str, ...] = ()

    def uses_rules(self, default_exclude_history: bool) -> bool:
        """Whether the request restricts the answer beyond "a catalog item"."""
        history = default_exclude_history if self.exclude_history is None else self.exclude_history
        return bool(history or len(self.exclude) or self.sets)


NO_RULES = RuleRequest()


def require_set_name(name: object, where: str) -> str:
    """`name` if it may name an item set, else a `ConfigError` starting with `where` (the flag or field)."""
    if not isinstance(name, str) or not SET_NAME.fullmatch(name) or len(name) > MAX_SET_NAME_LENGTH:
        raise ConfigError(
            f"{where}: item set name {clip(repr(name), 80)} must be 1-{MAX_SET_NAME_LENGTH} characters from "
            "[A-Za-z0-9_.:=-]"
        )
    return name
