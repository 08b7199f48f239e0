"""One line instead of a traceback when a deploy cannot write its version (a full disk, a quota, an I/O error).

A version is staged in a folder beside the repository and moved in only when complete (`serving.deploy`), and a
failure after the move takes the version out again, so the repository is left as it was. `write_failure` words
what failed, says so (after checking that no folder of the version is there), and gives the free space of the file
systems written and the size of the served version: the most a new one needs.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.serving.versions import VersionedRepository

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_MIB = 1024 * 1024


def write_failure(repo: VersionedRepository, number: int | None, exc: OSError, step: str = "") -> RepositoryError:
    """The error to raise for `exc`, met while deploying version `number` of `repo` (in progress `step`)."""
    what = f"deploy of version {number}" if number else "deploy"
    where = (f" on {exc.filename}" if exc.filename else "") + (f" in step {step!r}" if step else "")
    cause = "no space left on device" if is_disk_full(exc) else (exc.strerror or str(exc))
    leftover = [f"{step}/{number}" for step in repo.steps if number and (repo.path / step / str(number)).exists()]
    if leftover:
        state = f"version {number}'s folders {', '.join(leftover)} may be incomplete: remove them, then run validate"
    elif number:
        state = f"{repo.path} is unchanged (the partly written version was removed; no version {number} is there)"
    else:
        state = f"{repo.path} is unchanged"
    space = _space(repo)
    return RepositoryError(f"{what} to {repo.path} failed{where}: {cause}; {state}. {space}")


def is_disk_full(exc: OSError) -> bool:
    """ENOSPC/EDQUOT, or numpy's short write ("N requested and M written"), which carries no errno."""
    return exc.errno in _FULL or (exc.errno is None and "requested and" in str(exc) and "written" in str(exc))


def version_bytes(repo: VersionedRepository, number: int) -> int:
    """The bytes of version `number`'s folders (a file hard-linked into several steps counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for step in repo.steps:
        for folder, _, names in os.walk(repo.path / step / str(number)):
            for name in names:
                info = os.lstat(Path(folder) / name)
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def _space(repo: VersionedRepository) -> str:
    """Free space where the version is staged and moved, and the served version's size."""
    try:
        needed = version_bytes(repo, repo.pinned())
    except (OSError, RepositoryError):
        needed = 0
    places = {}
    for folder in (repo.path.parent, repo.path):  # the staging folder is made beside the repository
        try:
            places.setdefault(os.stat(folder).st_dev, (folder, shutil.disk_usage(folder).free))
        except OSError:
            continue
    free = "; ".join(f"{folder} has {size / _MIB:.1f} MiB free" for folder, size in places.values())
    size = f"; the served version takes {needed / _MIB:.1f} MiB (a new one needs up to that)" if needed else ""
    return f"{free}{size}: free space and deploy again" if free else "free space and deploy again"
