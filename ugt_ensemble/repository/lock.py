"""One lock per model repository, so that version operations (deploy, rollback, cleanup, variant) run one at a
time and each starts from the state the previous one left.

The lock is an `flock` on `<repository>/.ugt-lock`, a plain file: Triton takes every folder of a repository
for a model, but files beside them (the manifest, this one) are not models. The kernel releases the lock
when its holder exits, even when killed, so a crash never leaves the repository locked. The holder writes
who it is into the file (pid, command, operation, since when) so that a waiting operation can name it.
Whoever can write the repository folder could put a symlink or a hard link there: the file is opened with
O_NOFOLLOW and refused unless it is a regular file with one name, so no other file is ever written or truncated.

Inside one thread, taking the lock again while holding it is allowed (`Rollout.rollback` calls `switch`).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ugt_ensemble.errors import RepositoryError

LOGGER = logging.getLogger(__name__)
LOCK_FILE = ".ugt-lock"
#: How long an operation waits for the lock by default (a deploy builds a version while it holds it).
DEFAULT_TIMEOUT_S = 600.0
_POLL_S = 0.2
#: The most of the lock file `read_holder` reads (a holder writes a few hundred bytes).
_MAX_HOLDER_BYTES = 65536
_held = threading.local()


class RepositoryBusyError(RepositoryError):
    """Another version operation held the repository's lock for longer than this one would wait."""


class RepositoryLock:
    """`with RepositoryLock(repository, "deploy", timeout_s=600):` holds the repository's lock.

    A second holder waits up to `timeout_s` seconds (0: not at all), then raises `RepositoryBusyError`
    naming the holder; `waited_s` says how long this one waited.
    """

    def __init__(self, repository: str | Path, operation: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = Path(repository) / LOCK_FILE
        self.operation = operation
        self.timeout_s = float(timeout_s)
        self.waited_s = 0.0
        self._fd: int | None = None
        self._nested = False
        self._key = ""

    def __enter__(self) -> RepositoryLock:
        key = self._key = str(self.path.parent.resolve() / LOCK_FILE)
        depth = getattr(_held, "depth", {})
        _held.depth = depth
        if depth.get(key):
            depth[key] += 1
            self._nested = True
            return self
        self._fd = _open(self.path)
        try:
            self._wait()
            _write_holder(self._fd, self.operation, self.path)
        except BaseException:
            os.close(self._fd)
            raise
        depth[key] = 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        depth = _held.depth
        key = self._key
        depth[key] -= 1
        if self._nested or self._fd is None:
            return
        del depth[key]
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def _wait(self) -> None:
        start = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.waited_s = time.monotonic() - start
                if announced:
                    LOGGER.info("%s: got the lock after %.1f s", self.path.parent, self.waited_s)
                return
            except BlockingIOError:
                pass
            waited = time.monotonic() - start
            if waited >= self.timeout_s:
                raise RepositoryBusyError(
                    f"{self.path.parent}: {self.operation} waited {waited:.0f} s for the repository's lock "
                    f"({self.path}), held by {describe_holder(self.path)}; try again when it is done "
                    "(--lock-timeout SECONDS to wait longer)"
                )
            if not announced:
                LOGGER.info("%s: waiting for %s to finish (up to %.0f s)", self.path.parent,
                            describe_holder(self.path), self.timeout_s)  # fmt: skip
                announced = True
            time.sleep(min(_POLL_S, max(0.0, self.timeout_s - waited)))


def read_holder(path: Path) -> dict[str, Any]:
    """What the lock file says about its holder ({} when it is empty or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        text = os.read(fd, _MAX_HOLDER_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        holder = json.loads(text.decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return holder if isinstance(holder, dict) else {}


def describe_holder(path: Path) -> str:
    """E.g. `deploy (pid 123 on host, since 2026-01-01T10:00:00+00:00: python -m ugt_ensemble deploy ...)`."""
    holder = read_holder(path)
    if not holder:
        return "another process (it wrote nothing into the lock file yet)"
    command = str(holder.get("command", ""))[:200]
    return (
        f"{holder.get('operation', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"since {holder.get('since', '?')}: {command})"
    )


def _open(path: Path) -> int:
    """A descriptor of the lock file, created if missing; never through a symlink, never anything but a plain
    file with one name (a hard link to another file would let this write into that file), never truncated here."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise RepositoryError(f"{path}: cannot inspect the repository's lock file ({exc.strerror})") from None
    if found is not None:
        _require_plain_file(path, found)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink created since the lstat
            _require_plain_file(path, os.lstat(path))
        raise RepositoryError(
            f"{path}: cannot open the repository's lock file ({exc.strerror}); version operations write to "
            "the repository, so run them where it is writable"
        ) from None
    try:
        _require_plain_file(path, os.fstat(fd))  # the file opened, whatever the path names by now
    except BaseException:
        os.close(fd)
        raise
    return fd


def _require_plain_file(path: Path, found: os.stat_result) -> None:
    """RepositoryError unless `found` (the lock path's status) is a regular file with a single name."""
    if stat.S_ISLNK(found.st_mode):
        problem = f"is a symbolic link (to {os.readlink(path)!r})"
    elif not stat.S_ISREG(found.st_mode):
        problem = "is not a regular file"
    elif found.st_nlink != 1:
        problem = f"is a hard link ({found.st_nlink} names share the file)"
    else:
        return
    raise RepositoryError(
        f"{path}: the repository's lock file {problem}; refusing to write to it (whoever can write {path.parent} "
        f"could point it at another file): remove {path} and run the command again"
    )


def _write_holder(fd: int, operation: str, path: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    holder = {"operation": operation, "pid": os.getpid(), "host": socket.gethostname(), "since": now,
              "command": command}  # fmt: skip
    data = (json.dumps(holder) + "\n").encode("utf-8")
    try:
        os.ftruncate(fd, 0)  # `_open` checked that fd is the lock file itself
        os.pwrite(fd, data, 0)
    except OSError as exc:  # e.g. a full disk: the lock is held all the same, only its holder goes unnamed
        LOGGER.warning("%s: cannot write who holds the lock (%s); holding it anyway", path, exc.strerror)
