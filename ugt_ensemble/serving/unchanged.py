"""A deploy that changes nothing: the staged version's files equal the served version's, and its item sets are
defined the same way. `deploy` then says so and makes no version (an identical catalog deployed again made a new
version without a word).

Files are compared step by step, by their paths under the version folder (Python caches aside) and their content:
the same file (a hard link), else equal sizes and equal sha256: the staged file's from its folder's seal
(`runtime.data_files`, just written) where it has one, the served file's always hashed (a damaged served file
differs from its own seal: deploying the same data again repairs it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ugt_ensemble.errors import UgtEnsembleError
from ugt_ensemble.runtime.data_files import SEAL_FILE, Recorded, read_seal, sha256_of
from ugt_ensemble.serving.version_sets import RECORD_KEY, ItemSetSources
from ugt_ensemble.serving.versions import VersionedRepository

_SKIPPED = "__pycache__"


class UnchangedVersion(UgtEnsembleError):
    """The new version would be the served one again; `served` is its number."""

    def __init__(self, message: str, served: int) -> None:
        super().__init__(message)
        self.served = served


def refuse_unchanged(repo: VersionedRepository, staging: Path, number: int, sets: ItemSetSources) -> None:
    """`UnchangedVersion` when version `number`, staged under `staging`/<step>/`number`, holds the served version's
    files and its item sets are defined as the served version's."""
    served = repo.pinned()
    record = (repo.manifest.get("versions") or {}).get(str(served)) or {}
    recorded = record.get(RECORD_KEY)
    if isinstance(recorded, dict) and _definitions(recorded) != _definitions(sets.as_record(())):
        return
    for step in repo.steps:
        if not same_files(staging / step / str(number), repo.path / step / str(served)):
            return
    raise UnchangedVersion(
        f"nothing to deploy: version {number} would hold the same model, catalog and item sets as the served version "
        f"{served} (every file of its {len(repo.steps)} steps is identical); no version was made",
        served,
    )


def same_files(new: Path, old: Path) -> bool:
    """Whether folders `new` and `old` hold the same relative paths with the same content."""
    paths = _files(new)
    if paths != _files(old):
        return False
    seals = _seals(new, paths)
    return all(_same(new / rel, old / rel, seals.get(rel)) for rel in sorted(paths))


def _definitions(record: dict) -> tuple:
    return sorted(record.get("set_columns") or ()), sorted(map(tuple, record.get("item_sets") or ()))


def _files(folder: Path) -> set[str]:
    found = set()
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != _SKIPPED]
        found |= {str(Path(root, name).relative_to(folder)) for name in names}
    return found


def _seals(folder: Path, paths: set[str]) -> dict[str, Recorded]:
    """Every seal's records under `folder`, by path relative to it."""
    records: dict[str, Recorded] = {}
    for rel in (p for p in paths if Path(p).name == SEAL_FILE):
        parent = Path(rel).parent
        try:
            records.update({str(parent / name): value for name, value in read_seal(folder / parent).items()})
        except UgtEnsembleError:
            continue  # an unreadable seal: the files are hashed
    return records


def _same(new: Path, old: Path, new_record: Recorded | None) -> bool:
    try:
        if os.path.samefile(new, old):
            return True
        if new.stat().st_size != old.stat().st_size:
            return False
        return (new_record.sha256 if new_record is not None else sha256_of(new)) == sha256_of(old)
    except OSError:
        return False
