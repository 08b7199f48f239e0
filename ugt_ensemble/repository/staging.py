"""Write a build beside its output directory, then swap in only what a previous build provably wrote.

Rules (checked before any work, and again just before the swap):
- the output directory is a directory, or does not exist yet;
- a folder is replaced or removed only if it is a model folder (a valid model name directly inside
  the output, never the output itself, never a symbolic link) and every file in it was written by a
  previous build (its manifest lists the file) or is byte-identical to what this build writes there;
  Python's `__pycache__` files count as written;
- anything else stops the build with the list of what it would have lost; nothing is changed.

The swap moves the old folders aside, moves the new ones in and writes the manifest; should a move
fail, the old folders are put back.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from ugt_ensemble.config import require_model_name
from ugt_ensemble.errors import ConfigError, RepositoryError
from ugt_ensemble.repository.manifest import PreviousBuild, previous_build, write_manifest

LOGGER = logging.getLogger(__name__)
#: How many unexpected files an error lists.
MAX_LISTED = 10


def check_output_dir(output_dir: Path) -> Path:
    """The absolute output directory; ConfigError if it exists as something other than a directory."""
    path = Path(output_dir).absolute()
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"--output-dir {output_dir} is a dangling symbolic link")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output-dir {output_dir} exists and is not a directory; choose a directory")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"--output-dir {output_dir}: {parent} is not a directory")
    return path


def check_replaceable(output_dir: Path, models: Iterable[str], ours: Mapping[str, bytes] = {}) -> PreviousBuild:
    """Raise RepositoryError unless every folder that a build of `models` would replace may be deleted.

    `ours` maps relative paths to the exact bytes this build writes there (files already identical are
    not the user's). Returns what the previous build wrote.
    """
    root = check_output_dir(output_dir)
    if not root.exists():
        return PreviousBuild()
    previous = previous_build(root)
    problems: list[str] = []
    for name in sorted(set(models) | set(previous.models)):
        problems += _folder_problems(root, require_model_name(name), previous, ours)
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise RepositoryError(
            f"build would replace model folders of {root} that hold what it did not write:\n  {listed}{more}\n"
            "Move these elsewhere or choose another --output-dir; nothing was changed."
        )
    return previous


def _folder_problems(root: Path, name: str, previous: PreviousBuild, ours: Mapping[str, bytes]) -> list[str]:
    folder = root / name
    if folder.is_symlink():
        return [f"{folder} is a symbolic link (build neither follows nor removes links)"]
    if not folder.exists():
        return []
    if not folder.is_dir():
        return [f"{folder} is a file, not a model folder"]
    problems = []
    for directory, subdirs, files in os.walk(folder):
        here = Path(directory)
        for entry in sorted(subdirs + files):
            path = here / entry
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                problems.append(f"{path} (a symbolic link)")
            elif path.is_file() and not _ours(relative, path, previous, ours):
                problems.append(str(path))
            elif not path.is_file() and not path.is_dir():
                problems.append(f"{path} (not a regular file)")
    return problems


def _ours(relative: str, path: Path, previous: PreviousBuild, ours: Mapping[str, bytes]) -> bool:
    if previous.wrote(relative) or ("__pycache__" in PurePosixPath(relative).parts and path.suffix == ".pyc"):
        return True
    expected = ours.get(relative)
    return expected is not None and path.stat().st_size == len(expected) and path.read_bytes() == expected


class StagedRepository:
    """A staging directory for a build of `output_dir`, swapped in by `commit` (see the module docstring).

    Use as a context manager: the staging directory is removed on exit, whether or not it was committed.
    """

    def __init__(self, output_dir: Path, ours: Mapping[str, bytes] = {}) -> None:
        self.output_dir = check_output_dir(output_dir)
        self.ours = dict(ours)
        self.path: Path = Path()

    def __enter__(self) -> StagedRepository:
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.output_dir.name}.staging-", dir=self._staging_parent()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _staging_parent(self) -> Path:
        """Beside the output, on the same file system (inside it if the output is a mount point)."""
        parent = self.output_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        if self.output_dir.is_dir() and os.stat(self.output_dir).st_dev != os.stat(parent).st_dev:
            return self.output_dir
        return parent

    def written_files(self, models: Iterable[str]) -> list[str]:
        """Every file staged under `models`, relative to the repository (what the manifest records)."""
        return sorted(
            p.relative_to(self.path).as_posix() for name in models for p in (self.path / name).rglob("*") if p.is_file()
        )

    def commit(self, models: list[str], manifest: dict[str, Any]) -> Path:
        """Swap the staged `models` in, remove the previous build's other models, write the manifest."""
        previous = check_replaceable(self.output_dir, models, self.ours)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        manifest = {**manifest, "models": list(models), "files": self.written_files(models)}
        aside = self.path / ".replaced"
        aside.mkdir()
        moved_aside, moved_in = [], []
        try:
            for name in sorted(set(models) | set(previous.models)):
                if (self.output_dir / name).exists():
                    os.replace(self.output_dir / name, aside / name)
                    moved_aside.append(name)
            for name in models:
                os.replace(self.path / name, self.output_dir / name)
                moved_in.append(name)
            path = write_manifest(self.output_dir, manifest)
        except OSError as exc:
            self._restore(moved_aside, moved_in, aside)
            message = f"could not swap the new build into {self.output_dir} ({exc}); restored the old one"
            raise RepositoryError(message) from exc
        _warn_about_foreign_models(self.output_dir, models)
        return path

    def _restore(self, moved_aside: list[str], moved_in: list[str], aside: Path) -> None:
        for name in moved_in:
            os.replace(self.output_dir / name, self.path / name)
        for name in moved_aside:
            os.replace(aside / name, self.output_dir / name)


def _warn_about_foreign_models(output_dir: Path, ours: list[str]) -> None:
    foreign = sorted(p.name for p in output_dir.iterdir() if (p / "config.pbtxt").is_file() and p.name not in ours)
    if foreign:
        LOGGER.warning(
            "%s also holds model(s) %s that this build did not write; tritonserver will load them too",
            output_dir,
            foreign,
        )
