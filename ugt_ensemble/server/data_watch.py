"""The watchdog's check of a served repository's data files against the sizes and hashes recorded when they
were written (`runtime.data_files`): a file changed on disk cannot be healed by reloading.

Every round it stats each file that a version folder's seal records (about 1 us a file; the catalog folders
of the three steps of a version are one set of hard-linked files) and hashes a file again only when its
inode, size or modification time changed since the last round (a hard-linked file once per
change, whichever version names it). The first round hashes everything once.

What it means for the watchdog (`server.watchdog`): damaged data is logged as an error naming the file and
the recorded and actual size or hash, once when found and once when it matches again; every round that
finds damage is counted in `failed_checks`. A step with a damaged file in one of its version folders is not
reloaded (Triton loads every version of the policy again, and refuses the model when one fails: the reload
would fail and take the step's running stubs away), and damage never makes the watchdog give up: a restart
of tritonserver cannot repair a file, and the restarted server would refuse to load the damaged version, so
the supervisor would restart it again and again. The steps keep answering what they can (a truncated file
is refused per batch by `FileGuard`, naming it) until the operator restores the file or deploys the version
again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.runtime.data_files import SEAL_FILE, DataFileError, Recorded, read_seal, sha256_of

LOGGER = logging.getLogger(__name__)
#: Where seals lie: a model step's version folder, and a step's catalog folder.
SEAL_PATTERNS = (f"*/[0-9]*/{SEAL_FILE}", f"*/[0-9]*/*/{SEAL_FILE}")
_Key = tuple[int, int, int, int]  # (device, inode, size, mtime in ns)


@dataclass
class DataWatch:
    """Checks the sealed data files under `repository` (see the module docstring)."""

    repository: Path
    #: file -> what is wrong with it, as found by the last `check`.
    damage: dict[str, str] = field(default_factory=dict)
    #: `check` calls that found damage.
    failed_checks: int = 0
    _digests: dict[_Key, str] = field(default_factory=dict, repr=False)  # stat key -> its file's sha256

    def check(self) -> dict[str, str]:
        """Check every sealed file; returns (and keeps in `damage`) file -> problem. Logs changes."""
        found: dict[str, str] = {}
        previous, self._digests = self._digests, {}  # keys not seen again (replaced files) are dropped
        for seal in sorted(p for pattern in SEAL_PATTERNS for p in Path(self.repository).glob(pattern)):
            try:
                records = read_seal(seal.parent)
            except DataFileError as exc:
                found[str(seal)] = str(exc)
                continue
            for name, recorded in records.items():
                problem = self._problem(seal.parent / name, recorded, previous)
                if problem is not None:
                    found[str(seal.parent / name)] = problem
        self._report(found)
        return found

    def damaged_models(self) -> set[str]:
        """`check`, then the models with a damaged file in one of their version folders."""
        root = Path(self.repository)
        return {Path(path).relative_to(root).parts[0] for path in self.check()}

    def _problem(self, path: Path, recorded: Recorded, previous: dict[_Key, str]) -> str | None:
        """What is wrong with `path`, or None; hashes it unless the last round (`previous`) or this one (another
        hard link) hashed the same (inode, size, mtime) already."""
        try:
            info = path.stat()
        except FileNotFoundError:
            return f"{path}: missing, recorded with {recorded.size} bytes when written"
        except OSError as exc:
            return f"{path}: cannot be read ({exc.strerror or exc})"
        if info.st_size != recorded.size:
            return f"{path}: {info.st_size} bytes, {recorded.size} recorded when written (truncated or grown)"
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        digest = previous.get(key) or self._digests.get(key)
        if digest is None:
            try:
                digest = sha256_of(path)
            except OSError as exc:
                return f"{path}: cannot be read ({exc.strerror or exc})"
        self._digests[key] = digest
        if digest != recorded.sha256:
            return f"{path}: sha256 {digest[:16]}..., {recorded.sha256[:16]}... recorded when written (content changed)"
        return None

    def _report(self, found: dict[str, str]) -> None:
        for path, problem in found.items():
            if self.damage.get(path) != problem:
                LOGGER.error("watchdog: damaged data file (a reload cannot repair it): %s", problem)
        for path in sorted(set(self.damage) - set(found)):
            LOGGER.warning("watchdog: %s matches its recorded size and hash again", path)
        if found:
            self.failed_checks += 1
        self.damage = found
