"""`RuleRequest`: the business rules one request asks for (what the HISTORY document's object form carries).

A HISTORY document is either a JSON list of events (no rules beyond the repository's defaults) or an object
`{"events": [...], "exclude_history": true, "exclude": [item ids], "sets": ["in_stock", "category=books"]}`
(every key but "events" optional). See README, "Business rules".
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, clip

#: Most item ids one request may exclude, and most item sets it may name (requests beyond are refused).
MAX_EXCLUDED_ITEMS = 1000
MAX_SETS_PER_REQUEST = 8
#: Most characters (Unicode code points, after NFC normalisation) of an item set name.
MAX_SET_NAME_LENGTH = 200
#: Unicode categories a set name may not hold: control characters (C0, DEL, C1), surrogates (not UTF-8),
#: line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
#: Bidirectional embedding, override and isolate controls (they reorder the text around them in logs).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: The rule, as error messages and README state it.
SET_NAME_RULE = (
    f"1-{MAX_SET_NAME_LENGTH} characters of any script (spaces, '&', apostrophes allowed), no control "
    "characters or line breaks, no leading or trailing white space"
)


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


def normal_set_name(name: str) -> str:
    """`name` in Unicode NFC: the form set names are stored and looked up in ("Café" composed or decomposed is
    one name)."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def set_name_problem(name: object) -> str | None:
    """What makes `name` no item set name (see `SET_NAME_RULE`), or None when it is one."""
    if not isinstance(name, str):
        return f"is not text ({type(name).__name__})"
    if not name:
        return "is empty"
    if len(name) > MAX_SET_NAME_LENGTH:
        return f"is {len(name)} characters long (the limit is {MAX_SET_NAME_LENGTH})"
    if name != name.strip():
        return "has leading or trailing white space"
    if name.isascii() and name.isprintable():
        return None
    for position, char in enumerate(name):
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _BIDI_CONTROLS:
            return f"holds the control character U+{ord(char):04X} at position {position}"
    return None


def require_set_name(name: object, where: str) -> str:
    """`name` in NFC (`normal_set_name`) if it may name an item set, else a `ConfigError` starting with `where`
    (the flag, field or catalog value) that says why and states `SET_NAME_RULE`."""
    normal = normal_set_name(name) if isinstance(name, str) else name
    problem = set_name_problem(normal)
    if problem is not None:
        raise ConfigError(f"{where}: item set name {clip(repr(name), 80)} {problem}; a set name is {SET_NAME_RULE}")
    return normal  # type: ignore[return-value]
