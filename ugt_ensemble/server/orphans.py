"""What a dead tritonserver leaves behind, and its removal: Python-backend stubs and /dev/shm regions.

The Python backend gives each stub a shared-memory region in /dev/shm. When tritonserver stops or dies, a
healthy stub notices and exits, and its region goes with it; a stub that is stopped (SIGSTOP), hung or
deadlocked on a lock the dead server held stays behind, holding its region (measured after crashes under
load: 11 regions, 17 MiB). `serve` starts tritonserver with a region prefix of its own (`shm_prefix_args`),
so after a death `clean_up_after` removes exactly what that server left: it kills the stubs that name the
dead server as their parent, then deletes the regions that carry the prefix or that those stubs were
given, unless a live process still maps them. Other servers' stubs and regions are never touched.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.server.stubs import orphans_of, proc_stat

SHM_DIR = Path("/dev/shm")
#: What a region's file name may look like (no path separators, nothing hidden).
REGION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Cleanup:
    """What `clean_up_after` removed: stub pids killed, region names deleted, and their bytes."""

    stubs: list[int] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    bytes: int = 0

    def describe(self) -> str:
        return (
            f"{len(self.stubs)} orphan stub(s) killed, {len(self.regions)} shared-memory region(s) "
            f"({self.bytes / 2**20:.1f} MiB) removed"
        )


def new_shm_prefix() -> str:
    """A region prefix for one `serve` process: its pid and a random tag (no other server shares it)."""
    return f"ugt_serve_{os.getpid()}_{secrets.token_hex(3)}_"


#: The tritonserver flag that names the Python backend's regions (`PREFIX_FLAG + prefix`).
PREFIX_FLAG = "--backend-config=python,shm-region-prefix-name="


def shm_prefix_args(prefix: str) -> tuple[str]:
    """The tritonserver flag that names the Python backend's regions `<prefix><uuid>`."""
    return (f"{PREFIX_FLAG}{prefix}",)


def regions_with_prefix(prefix: str) -> list[str]:
    """Names of the /dev/shm files that start with `prefix`."""
    if not prefix or not SHM_DIR.is_dir():
        return []
    return sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix))


def mapped_regions() -> set[str]:
    """Names of the /dev/shm files that some live process maps (every readable /proc/<pid>/maps)."""
    names = set()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "maps").read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith(f"{SHM_DIR}/"):
                names.add(parts[5][len(str(SHM_DIR)) + 1 :].removesuffix(" (deleted)"))
    return names


def clean_up_after(server_pid: int, shm_prefix: str | None, timeout_s: float = 5.0) -> Cleanup:
    """Kill the stubs that tritonserver `server_pid` (no longer running) left, and delete its regions."""
    done = Cleanup()
    orphans = orphans_of(server_pid)
    for orphan in orphans:
        try:
            os.kill(orphan.pid, signal.SIGKILL)
            done.stubs.append(orphan.pid)
        except ProcessLookupError:
            pass
    wait_gone(done.stubs, timeout_s)
    candidates = {o.region for o in orphans} | set(regions_with_prefix(shm_prefix or ""))
    in_use = mapped_regions()
    for name in sorted(candidates - in_use):
        path = SHM_DIR / name
        if not REGION_NAME.fullmatch(name) or not path.is_file() or path.is_symlink():
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        done.regions.append(name)
        done.bytes += size
    return done


def wait_gone(pids: list[int], timeout_s: float) -> None:
    """Wait until `pids` have exited (a zombie counts as gone; ours are reaped)."""
    deadline = time.monotonic() + timeout_s
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            stat = proc_stat(pid)
            if stat is None or stat[0] == "Z":
                _reap(pid)
                left.discard(pid)
        if left:
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status of `pid` if it became our child (serve running as PID 1 in a container)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
