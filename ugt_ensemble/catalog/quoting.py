"""What an error about a catalog or item-set file may quote from it: short plain values, never raw bytes.

A path the user names may be any file (`--item-set x=/etc/shadow`, `--catalog` a key): an error names the
file, the line and what was expected, and quotes a header or a value only when it already looks like what
the format holds (a column name; a short id-like token in a file that did list item ids).
"""

from __future__ import annotations

import csv
import re

from ugt_ensemble.runtime.errors import clip

#: A column name a header may show: a short plain name.
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .=-]{0,63}")
#: A value an error may quote: a short token of the characters a (mistyped) number or name is made of.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.+-]{1,24}")
_MOST_COLUMNS = 64


def plain_header(names: list[str]) -> str | None:
    """`names` as an error may show them (a list of column names), or None when they are not all plain names."""
    if 0 < len(names) <= _MOST_COLUMNS and all(_COLUMN_NAME.fullmatch(name) for name in names):
        return clip(str(names))
    return None


def plain_value(value: str) -> str | None:
    """`value` quoted, or None when it is not a short plain token."""
    return repr(value) if _PLAIN_VALUE.fullmatch(value) else None


def read_failure(exc: OSError | UnicodeDecodeError | csv.Error) -> str:
    """Why a text file could not be read, without the bytes a decoding error carries."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (an undecodable byte at offset {exc.start})"
    return str(exc)
