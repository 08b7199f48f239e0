"""The item-set definitions of a version: which named sets (allow-lists) it serves and where they come from.

Each version deployed records its definitions in its manifest record (`RECORD_KEY`): the set columns, the set
files (absolute paths) and the catalog file the columns are read from. A new version keeps the served
version's definitions (the build's, for a version that records none): its set files are read again and its
set columns are read from the new catalog. A deploy that names `--set-column` or `--item-set` replaces them
all: the new version serves exactly the sets its flags define. A set column needs a catalog file, so
`--set-column` comes with `--catalog`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.serving.versions import VersionedRepository

#: The `ExportConfig` fields a deploy's set flags fill (`cli.item_set_flags`).
SET_FIELDS = ("set_columns", "item_sets")
#: The key of a version's manifest record holding its definitions.
RECORD_KEY = "item_set_sources"


@dataclass(frozen=True)
class ItemSetSources:
    """A version's set definitions: `set_columns` read from `catalog_path`, and `item_sets` (name, file)."""

    set_columns: tuple[str, ...] = ()
    item_sets: tuple[tuple[str, Path], ...] = ()
    catalog_path: Path | None = None

    @classmethod
    def served(cls, repo: VersionedRepository) -> ItemSetSources:
        """The served version's definitions: its record's, else (the build, or a version deployed before
        versions recorded them) the build's settings."""
        record = (repo.manifest.get("versions") or {}).get(str(repo.pinned())) or {}
        sources = record.get(RECORD_KEY)
        if not isinstance(sources, Mapping):
            sources = repo.manifest.get("export") or {}
        export = ExportConfig(set_columns=sources.get("set_columns") or (), item_sets=sources.get("item_sets") or ())
        catalog = sources.get("catalog_path")
        return cls(export.set_columns, export.item_sets, Path(catalog) if catalog else None)

    @classmethod
    def for_new_version(
        cls, repo: VersionedRepository, changes: Mapping[str, Any], catalog_path: Path | None
    ) -> ItemSetSources:
        """The definitions of a new version with `catalog_path` (None: the served version's catalog):
        `changes`' `SET_FIELDS` when it names any, else the served version's."""
        require_catalog_for_columns(changes, catalog_path)
        served = cls.served(repo)
        catalog = Path(catalog_path).resolve() if catalog_path is not None else served.catalog_path
        if not any(changes.get(name) for name in SET_FIELDS):
            return dataclasses.replace(served, catalog_path=catalog)
        export = ExportConfig(set_columns=changes.get("set_columns") or (), item_sets=changes.get("item_sets") or ())
        files = tuple((name, Path(path).resolve()) for name, path in export.item_sets)
        return cls(export.set_columns, files, catalog)

    def apply(self, export: ExportConfig) -> ExportConfig:
        """`export` with these definitions and their catalog file."""
        return dataclasses.replace(
            export, set_columns=self.set_columns, item_sets=self.item_sets, catalog_path=self.catalog_path
        )

    def as_record(self, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """The manifest record of these definitions, with the set `names` they gave."""
        return {
            "set_columns": list(self.set_columns),
            "item_sets": [[name, str(path)] for name, path in self.item_sets],
            "catalog_path": str(self.catalog_path) if self.catalog_path else None,
            "names": list(names),
        }


def split_changes(changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the model's changes, the set flags' changes) of a deploy's `changes`."""
    model = {k: v for k, v in changes.items() if k not in SET_FIELDS}
    return model, {k: v for k, v in changes.items() if k in SET_FIELDS and v}


def require_catalog_for_columns(changes: Mapping[str, Any], catalog_path: Path | None) -> None:
    """ConfigError when `changes` names set columns but no catalog file is given to read them from."""
    if changes.get("set_columns") and catalog_path is None:
        raise ConfigError(
            "deploy --set-column reads the column from a catalog file: pass --catalog FILE with it (without "
            "--catalog, a version's sets come from --item-set NAME=FILE)"
        )
