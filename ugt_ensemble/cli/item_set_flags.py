"""`--set-column COL` and `--item-set NAME=FILE`: the item sets (allow-lists) of `build` and `deploy`.

Both flags repeat; they fill `ExportConfig.set_columns` and `ExportConfig.item_sets`
(see `ugt_ensemble.catalog.item_sets` for what each defines).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ugt_ensemble.config.export import parse_item_set
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.rule_request import require_set_name

SET_COLUMNS, ITEM_SETS = "set_columns", "item_sets"


def add_item_set_flags(parser: argparse._ActionsContainer) -> None:
    """Add both flags to `parser` (a parser or an argument group)."""
    parser.add_argument(
        "--set-column", action="append", dest=SET_COLUMNS, type=_set_column, metavar="COL",
        help="catalog column defining item sets, repeatable: a boolean column (0/1/true/false) is one set named "
        'COL; any other column gives one set per value, named "COL=value" (at most 256 values)',
    )  # fmt: skip
    parser.add_argument(
        "--item-set", action="append", dest=ITEM_SETS, type=_item_set, metavar="NAME=FILE",
        help="an item set listed in FILE (one item id per line, or a CSV with an item_id column), repeatable",
    )  # fmt: skip


def item_set_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The `ExportConfig` fields the two flags set (none when neither was given)."""
    changes: dict[str, Any] = {}
    for name in (SET_COLUMNS, ITEM_SETS):
        values = getattr(args, name, None)
        if values:
            changes[name] = tuple(values)
    return changes


def _set_column(text: str) -> str:
    try:
        require_set_name(text.strip(), "--set-column")  # the column as written: its sets' names are checked too
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _item_set(text: str) -> tuple[str, Path]:
    try:
        return parse_item_set(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
