"""The Python-backend stub processes of a running tritonserver (Linux /proc), by model and instance.

Triton starts one `triton_python_backend_stub` process per instance of each Python-backend model;
its command line names the model file (`<repository>/<model>/<version>/model.py`) and its instance
(`<model>_<group>_<index>`). A stub can die while Triton keeps reporting the model as ready.

The command line also names the stub's shared-memory region (argument 2, a file in /dev/shm) and the
pid of the tritonserver that started it (argument 5). When tritonserver dies, its stubs are re-parented,
so `orphans_of` finds them by that argument; a healthy stub notices and exits by itself, a stopped or
hung one stays behind holding its region.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STUB = "triton_python_backend_stub"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Stub:
    """One stub process: its pid, model, version, instance name, and resident memory in MiB."""

    pid: int
    model: str
    version: str
    instance: str
    rss_mib: float


def stubs_of(server_pid: int) -> list[Stub]:
    """The stubs whose parent is `server_pid`, sorted by instance name ([] where /proc is missing)."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            stub = _stub(int(entry.name), server_pid)
            if stub is not None:
                found.append(stub)
    return sorted(found, key=lambda s: s.instance)


@dataclass(frozen=True)
class OrphanStub:
    """A stub of a tritonserver that is gone: its pid and the shared-memory region it was given."""

    pid: int
    region: str


def orphans_of(server_pid: int) -> list[OrphanStub]:
    """The live stubs that tritonserver `server_pid` started, whatever their parent is now."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        argv = stub_argv(int(entry.name)) if entry.name.isdigit() else None
        if argv is not None and len(argv) > 5 and argv[5] == str(server_pid):
            found.append(OrphanStub(int(entry.name), argv[2]))
    return found


def stub_argv(pid: int) -> list[str] | None:
    """The command line of `pid` if it is a Python-backend stub, else None."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if not argv or not argv[0].endswith(STUB.encode()):
        return None
    return [a.decode("utf-8", "replace") for a in argv if a]


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first, then ppid, ...; None if gone).

    The command name is cut at its last ")", since it may itself hold spaces and parentheses.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` in MiB (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE / 2**20


def _stub(pid: int, server_pid: int) -> Stub | None:
    stat = proc_stat(pid)
    if stat is None or int(stat[1]) != server_pid:
        return None
    words = stub_argv(pid)
    if words is None:
        return None
    model_file = Path(words[1]) if len(words) > 1 else Path()
    instance = next((w for w in words[2:] if w.startswith(model_file.parent.parent.name + "_")), "")
    rss = process_rss_mib(pid)
    if rss is None:
        return None
    return Stub(pid, model_file.parent.parent.name, model_file.parent.name, instance, rss)
