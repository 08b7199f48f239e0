"""The processes a tool started, however deep (Linux /proc), and how to stop all of them.

Model Analyzer starts tritonserver and perf_analyzer in sessions of their own (a signal to its process group
misses them) and tritonserver starts a stub per Python-backend instance; when a parent dies first, its children
would go to init. `ProcessTree` makes this process a child subreaper (orphans come back to it), remembers every
descendant it has seen (pid and start time, so a reused pid is never signalled), and `stop` ends them all.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from ugt_ensemble.server.stubs import proc_stat, stub_argv

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper(on: bool = True) -> bool:
    """Make orphaned descendants of this process its children (Linux), or stop; False where it is not available."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children_map() -> dict[int, list[int]]:
    """parent pid -> its children's pids, for every process /proc shows."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None:
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every living descendant of `pid`, parents before their children."""
    children, found, queue = children_map(), [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _start_time(pid: int) -> str | None:
    stat = proc_stat(pid)
    return stat[19] if stat is not None and stat[0] != "Z" else None  # field 22 of /proc/<pid>/stat


class ProcessTree:
    """The processes below `root` (and below this process), remembered as they appear."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, str] = {}
        become_subreaper()
        self.track()

    def track(self) -> None:
        """Remember the descendants living now (call it often: a process that ends unseen leaves no trace)."""
        for pid in [self.root, *descendants(self.root), *descendants(os.getpid())]:
            started = _start_time(pid)
            if started is not None and pid != os.getpid():
                self.seen.setdefault(pid, started)

    def close(self) -> None:
        """Stop adopting orphans (this process is a subreaper while the tree is watched)."""
        become_subreaper(False)

    def alive(self) -> list[int]:
        """The remembered processes still running (the same process: same pid and start time)."""
        return [pid for pid, started in self.seen.items() if _start_time(pid) == started]

    def stop(self, grace_s: float = 5.0, first: signal.Signals = signal.SIGINT) -> int:
        """Send `first` to the root (Model Analyzer saves its checkpoint on SIGINT) and SIGTERM to the others but
        Python-backend stubs (tritonserver then unloads its models, so its stubs end and free their shared
        memory), then after `grace_s` SIGKILL to whatever is left of the tree; how many processes were running."""
        self.track()
        running = self.alive()
        self._signal([self.root], first)
        self._signal([pid for pid in running if pid != self.root and stub_argv(pid) is None], signal.SIGTERM)
        self._wait(grace_s)
        self.track()
        self._signal(self.alive(), signal.SIGKILL)
        self._wait(5.0)
        return len(running)

    def _signal(self, pids: list[int], sig: signal.Signals) -> None:
        for pid in pids:
            if _start_time(pid) == self.seen.get(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def _wait(self, seconds: float) -> None:
        """Reap exited children (ours, adopted too) until the tree is gone or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            _reap()
            self.track()
            if not self.alive():
                return
            time.sleep(0.1)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
