"""What dead `serve` processes left, and its removal when a new `serve` starts.

A `serve` killed with SIGKILL (or a container stopped so) cannot clean up: its tritonserver dies with it
(`process.die_with_parent`), but the Python backend's shared-memory regions stay in /dev/shm (measured:
3-16 `ugt_serve_<pid>_*` regions; on Kubernetes the /dev/shm emptyDir outlives container restarts), a stub
that was stopped or hung stays alive holding its region, and the server's temporary folder
(`ugt-triton-<pid>-*`) stays in the temp dir. Everything a serve makes carries its pid: regions are named
`ugt_serve_<pid>_<tag>_<uuid>` (`orphans.new_shm_prefix`), tritonserver's command line names that prefix,
each stub's names its region, and the folder is `ugt-triton-<pid>-<random>`.

`sweep_dead_serves` removes only names of those patterns whose owner is dead: no process with that pid runs,
or the one that does started after the thing was made (the pid was reused, e.g. a restarted container's
serve that got the same pid). Then it kills such tritonservers and stubs (SIGKILL), deletes such regions that
no live process maps, and removes such folders that belong to this user. Another live server's processes,
regions and folders are never touched, nor any name of another pattern.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.server.orphans import REGION_NAME, SHM_DIR, mapped_regions, wait_gone
from ugt_ensemble.server.process import WORKDIR_PREFIX
from ugt_ensemble.server.stubs import proc_stat, stub_argv

#: A region of a serve: `ugt_serve_<pid>_<6 hex>_...` (see `orphans.new_shm_prefix`).
SERVE_REGION = re.compile(r"ugt_serve_(\d+)_[0-9a-f]{6}_")
#: A server's temporary folder: `ugt-triton-<pid>-<TemporaryDirectory's random part>`.
SERVE_FOLDER = re.compile(re.escape(WORKDIR_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")
#: Seconds of clock slack when comparing a process's start with a file's time (boot time is whole seconds).
_SLACK_S = 2.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Sweep:
    """What `sweep_dead_serves` removed."""

    servers: list[int] = field(default_factory=list)
    stubs: list[int] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    bytes: int = 0
    folders: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.servers or self.stubs or self.regions or self.folders)

    def describe(self) -> str:
        return (
            f"{len(self.servers)} tritonserver(s) and {len(self.stubs)} stub(s) killed, {len(self.regions)} "
            f"shared-memory region(s) ({self.bytes / 2**20:.1f} MiB) and {len(self.folders)} temporary folder(s) "
            "removed"
        )


def sweep_dead_serves(tmp_dir: Path | None = None, timeout_s: float = 5.0) -> Sweep:
    """Remove what dead `serve` processes left (see the module docstring); what was removed."""
    done = Sweep()
    for pid, argv in _processes():
        if argv[0].endswith("tritonserver") and _dead_owner(_server_owner(argv), _started_at(pid)):
            done.servers += _killed(pid)
        elif argv[0].endswith("triton_python_backend_stub") and len(argv) > 2:
            owner = SERVE_REGION.match(argv[2])
            if owner and _dead_owner(int(owner.group(1)), _started_at(pid)):
                done.stubs += _killed(pid)
    wait_gone(done.servers + done.stubs, timeout_s)
    _remove_regions(done)
    _remove_folders(done, Path(tmp_dir or tempfile.gettempdir()))
    return done


def _remove_regions(done: Sweep) -> None:
    if not SHM_DIR.is_dir():
        return
    in_use = None
    for path in sorted(SHM_DIR.iterdir()):
        owner = SERVE_REGION.match(path.name)
        if not owner or not REGION_NAME.fullmatch(path.name) or path.is_symlink() or not path.is_file():
            continue
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if not _dead_owner(int(owner.group(1)), info.st_mtime):
            continue
        in_use = mapped_regions() if in_use is None else in_use
        if path.name in in_use:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        done.regions.append(path.name)
        done.bytes += info.st_size


def _remove_folders(done: Sweep, tmp_dir: Path) -> None:
    if not tmp_dir.is_dir():
        return
    for path in sorted(tmp_dir.iterdir()):
        owner = SERVE_FOLDER.fullmatch(path.name)
        if not owner or path.is_symlink() or not path.is_dir():
            continue
        info = path.stat()
        if info.st_uid != os.getuid() or not _dead_owner(int(owner.group(1)), info.st_mtime):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            done.folders.append(path.name)


def _dead_owner(pid: int | None, made_at: float | None) -> bool:
    """Whether serve `pid`, the maker of something made at `made_at` (wall clock), is gone: no live process
    has that pid, or the one that has it started after `made_at` (a reused pid). None: not ours, not dead."""
    if pid is None or made_at is None:
        return False
    started = _started_at(pid)
    return started is None or started > made_at + _SLACK_S


def _started_at(pid: int) -> float | None:
    """When live process `pid` started (wall clock, seconds); None if it is gone or a zombie."""
    stat = proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X") or len(stat) < 20:
        return None
    return _boot_time() + int(stat[19]) / _TICKS


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _server_owner(argv: list[str]) -> int | None:
    """The serve pid in a tritonserver command line's region prefix, if it has one of ours."""
    for arg in argv:
        _, _, prefix = arg.partition("shm-region-prefix-name=")
        owner = SERVE_REGION.match(prefix)
        if owner:
            return int(owner.group(1))
    return None


def _processes() -> list[tuple[int, list[str]]]:
    """(pid, command line) of each live process that is a tritonserver or a Python-backend stub."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = stub_argv(int(entry.name))
        if argv is None:
            try:
                raw = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not raw or not raw[0].endswith(b"tritonserver"):
                continue
            argv = [a.decode("utf-8", "replace") for a in raw if a]
        found.append((int(entry.name), argv))
    return found


def _killed(pid: int) -> list[int]:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return []
    return [pid]
