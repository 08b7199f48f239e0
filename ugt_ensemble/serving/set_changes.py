"""A deploy never takes away an item set clients use without being told to.

Requests name item sets (`"sets": ["in_stock"]`); a set the served version has and the new one lacks makes every
such request fail (400 / INVALID_ARGUMENT, "unknown item set") the moment the new version is served. A set
disappears when the deploy's set flags leave it out, when a categorical column loses a value, or when a set
column changes kind: one cell `maybe` in a boolean column makes it categorical ("in_stock=true", "in_stock=maybe",
...), and the set "in_stock" is gone. `check_set_changes` compares the sets the served version serves (its
constraint data on disk) with the new version's, explains each loss (the flag, the column, its old and new kind,
the row and value that changed it) and refuses unless the deploy says `--allow-set-changes`; then it logs them.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Iterable

from ugt_ensemble.catalog.catalog import data_row_label
from ugt_ensemble.catalog.files import PARQUET_SUFFIXES
from ugt_ensemble.catalog.item_sets import FALSE_VALUES, TRUE_VALUES
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.constraint_data import META_FILE
from ugt_ensemble.runtime.contract import CATALOG_DIR
from ugt_ensemble.runtime.errors import clip
from ugt_ensemble.serving.version_sets import RECORD_KEY, ItemSetSources
from ugt_ensemble.serving.versions import VersionedRepository

LOGGER = logging.getLogger(__name__)
#: The deploy flag (and `allow_set_changes=True` in the Python API) that lets a deploy drop served sets.
ALLOW_FLAG = "--allow-set-changes"
BOOLEAN, CATEGORY, EMPTY = "boolean", "category", "empty"


class SetChangeError(ConfigError):
    """A deploy would remove item sets the served version serves (and was not told to allow it)."""


def served_set_names(repo: VersionedRepository) -> tuple[str, ...]:
    """The item sets the served version serves: its constraint data's names, else its manifest record's."""
    served = repo.pinned()
    meta = repo.path / repo.steps[0] / str(served) / CATALOG_DIR / META_FILE
    try:
        return tuple(json.loads(meta.read_text(encoding="utf-8"))["set_names"])
    except (OSError, ValueError, KeyError, TypeError):
        record = (repo.manifest.get("versions") or {}).get(str(served)) or {}
        return tuple((record.get(RECORD_KEY) or {}).get("names") or ())


def check_set_changes(
    repo: VersionedRepository, new: ItemSetSources, new_names: Iterable[str], number: int, allow: bool
) -> list[str]:
    """The served sets version `number` (`new`, serving `new_names`) would drop, explained one by one;
    `SetChangeError` naming them unless `allow` (then each is logged as a warning)."""
    served_names = served_set_names(repo)
    dropped = [name for name in served_names if name not in set(new_names)]
    if not dropped:
        return []
    problems = explain_dropped(dropped, served_names, ItemSetSources.served(repo), new, tuple(new_names))
    if allow:
        for problem in problems:
            LOGGER.warning("version %d (%s): %s", number, ALLOW_FLAG, problem)
        return problems
    raise SetChangeError(
        f"deploy of version {number} refused: {'; '.join(problems)}. Requests naming a set that disappears "
        f"would get INVALID_ARGUMENT (HTTP 400). Fix the catalog or the set flags, or deploy with {ALLOW_FLAG}"
    )


def explain_dropped(
    dropped: list[str], served_names: tuple[str, ...], served: ItemSetSources, new: ItemSetSources,
    new_names: tuple[str, ...],
) -> list[str]:  # fmt: skip
    """One sentence per cause: a set flag left out, a column whose kind changed, a category value gone."""
    problems: list[str] = []
    files = {name for name, _ in served.item_sets}
    new_files = {name for name, _ in new.item_sets}
    for name in sorted(set(dropped) & (files - new_files)):
        problems.append(f"the deploy's set flags leave out --item-set {name}=FILE: the served set {name!r} would "
                        "disappear")  # fmt: skip
    explained = files - new_files
    for column in served.set_columns:
        lost = [n for n in dropped if n == column or n.startswith(f"{column}=")]
        if lost:
            problems.append(_column_problem(column, lost, served_names, new, new_names))
            explained |= set(lost)
    for name in dropped:
        if name not in explained:
            problems.append(f"the served set {name!r} would disappear")
    return problems


def _column_problem(
    column: str, lost: list[str], served_names: tuple[str, ...], new: ItemSetSources, new_names: tuple[str, ...]
) -> str:
    sets = ", ".join(repr(n) for n in lost)
    disappear = f"the served set{'s' if len(lost) > 1 else ''} {clip(sets, 300)} would disappear"
    if column not in new.set_columns:
        return f"the deploy's set flags leave out --set-column {column}: {disappear}"
    old, kind = column_kind(column, served_names), column_kind(column, new_names)
    where = f"catalog {new.catalog_path}"
    if old == BOOLEAN and kind == CATEGORY:
        found = first_non_boolean(new.catalog_path, column) if new.catalog_path else None
        cell = f" {found[0]}: {column} = {clip(repr(found[1]), 80)}" if found else f": column {column}"
        return f"{where}{cell} makes the boolean column {column} a category column; {disappear}"
    if kind == EMPTY:
        return f"{where}: column {column} is empty on every row, so it defines no set; {disappear}"
    if old == CATEGORY and kind == BOOLEAN:
        return (f"{where}: column {column} now holds only 0/1/true/false, which makes the category column {column} "
                f"a boolean one (one set named {column!r}); {disappear}")  # fmt: skip
    values = ", ".join(repr(n.split("=", 1)[1]) for n in lost if "=" in n)
    return f"{where}: no row of column {column} has the value(s) {clip(values, 200)} any more; {disappear}"


def column_kind(column: str, names: Iterable[str]) -> str:
    """How a set column defined `names`: one set named COL (boolean), sets "COL=value" (category), or none."""
    names = tuple(names)
    if column in names:
        return BOOLEAN
    return CATEGORY if any(n.startswith(f"{column}=") for n in names) else EMPTY


def first_non_boolean(path: Path, column: str) -> tuple[str, str] | None:
    """(where, value) of the first non-empty cell of `column` that is none of 0/1/true/false ("line N" in a CSV,
    as an editor numbers it; "row N" in Parquet), or None."""
    path = Path(path)
    boolean = TRUE_VALUES | FALSE_VALUES | {""}
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            cells = pq.read_table(path, columns=[column]).column(0).to_pylist()
            for row, value in enumerate(cells):
                if value is not None and str(value).strip().lower() not in boolean:
                    return data_row_label(row), str(value).strip()
            return None
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            position = [name.strip() for name in next(reader, [])].index(column)
            for row in reader:
                value = row[position].strip() if position < len(row) else ""
                if value.lower() not in boolean:
                    return f"line {reader.line_num}", value
    except (OSError, ValueError, ImportError, UnicodeDecodeError, csv.Error):  # the message then names no row
        return None
    return None
