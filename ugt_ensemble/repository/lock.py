"""One lock per model repository, so that version operations (deploy, rollback, cleanup, variant) run one at a
time and each starts from the state the previous one left.

The lock is an `flock` on `<repository>/.ugt-lock`, a plain file: Triton takes every folder of a repository
for a model, but files beside them (the manifest, this one) are not models. The kernel releases the lock
when its holder exits, even when killed, so a crash never leaves the repository locked. The holder writes
who it is into the file (pid, command, operation, since when) so that a waiting operation can name it.

Inside one thread, taking the lock again while holding it is allowed (`Rollout.rollback` calls `switch`).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
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

    def __enter__(self) -> RepositoryLock:
        key = str(self.path.resolve())
        depth = getattr(_held, "depth", {})
        _held.depth = depth
        if depth.get(key):
            depth[key] += 1
            self._nested = True
            return self
        self._fd = _open(self.path)
        try:
            self._wait()
            _write_holder(self._fd, self.operation)
        except BaseException:
            os.close(self._fd)
            raise
        depth[key] = 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        depth = _held.depth
        key = str(self.path.resolve())
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
        holder = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
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
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise RepositoryError(
            f"{path}: cannot open the repository's lock file ({exc.strerror}); version operations write to "
            "the repository, so run them where it is writable"
        ) from None


def _write_holder(fd: int, operation: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    holder = {"operation": operation, "pid": os.getpid(), "host": socket.gethostname(), "since": now,
              "command": command}  # fmt: skip
    data = (json.dumps(holder) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
