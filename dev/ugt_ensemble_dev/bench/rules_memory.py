"""`rules memory`: the memory of a served repository, process by process: tritonserver and each of its children
(the Python-backend stubs, named by the model instance they serve), from /proc/PID/smaps_rollup, after a few
requests have gone through every step.

Pss divides each shared page among the processes that map it, so the Pss total is what the server costs the
machine; "private" (Private_Clean + Private_Dirty) is what each process holds alone (a copy of the catalog per
step shows there; one memory-mapped catalog shows under "shared" and "file Pss").

The server is started by a small launcher in a chosen Python (`--server-python`): the repository is served by
that Python's ugt_ensemble, so an older tree's venv serves an older repository with its own code.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ugt_ensemble.server.stubs import proc_stat, stub_argv
from ugt_ensemble_dev.bench.rules_report import markdown

#: The smaps_rollup fields read (kB), by the column they feed.
FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty", "Pss_File", "Anonymous")
#: Started in the server's Python: serves argv[1] until its standard input closes; prints {"pid", "grpc_url"} once
#: the ensemble argv[2] is ready.
LAUNCHER = """
import json, sys
from ugt_ensemble.server import TritonServer
with TritonServer(sys.argv[1], ready_models=[sys.argv[2]], log_path=sys.argv[3]) as server:
    print(json.dumps({"pid": server.process.pid, "grpc_url": server.grpc_url}), flush=True)
    sys.stdin.read()
"""


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """The "Name: N kB" fields of a smaps_rollup text, in kB (the header line and other lines are skipped)."""
    fields = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        words = rest.split()
        if sep and len(words) == 2 and words[1] == "kB" and words[0].isdigit():
            fields[name.strip()] = int(words[0])
    return fields


@dataclass(frozen=True)
class MemoryRow:
    """One process's memory in MiB."""

    process: str
    pid: int
    rss: float
    pss: float
    private: float
    shared: float
    file_pss: float
    anonymous: float

    @classmethod
    def of(cls, process: str, pid: int, kb: dict[str, int]) -> MemoryRow:
        def mib(*names: str) -> float:
            return sum(kb.get(n, 0) for n in names) / 1024

        return cls(process, pid, mib("Rss"), mib("Pss"), mib("Private_Clean", "Private_Dirty"),
                   mib("Shared_Clean", "Shared_Dirty"), mib("Pss_File"), mib("Anonymous"))  # fmt: skip


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (Linux /proc), parents before their children."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            parents.setdefault(int(stat[1]), []).append(int(entry.name))
    found, queue = [], list(parents.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += parents.get(child, [])
    return found


def process_label(pid: int) -> str:
    """A stub's model instance ("stub preprocess_0_0"), else the process's command name."""
    argv = stub_argv(pid)
    if argv is not None and len(argv) > 1:
        model = Path(argv[1]).parent.parent.name
        instance = next((w for w in argv[2:] if w.startswith(model + "_")), model)
        return f"stub {instance}"
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def memory_rows(server_pid: int) -> list[MemoryRow]:
    """tritonserver `server_pid` and each of its descendants, read now (processes gone meanwhile are left out)."""
    rows = []
    for pid in [server_pid, *children(server_pid)]:
        try:
            kb = parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
        except OSError:
            continue
        rows.append(MemoryRow.of("tritonserver" if pid == server_pid else process_label(pid), pid, kb))
    return rows


def memory_table(rows: Sequence[MemoryRow]) -> str:
    """The rows as Markdown (MiB), with a total row (the Rss total counts shared pages once per process)."""
    columns = ("rss", "pss", "private", "shared", "file_pss", "anonymous")
    body = [[r.process, r.pid, *(getattr(r, c) for c in columns)] for r in rows]
    body.append(["**total**", None, *(sum(getattr(r, c) for r in rows) for c in columns)])
    return markdown(["process", "pid", "Rss MiB", "Pss MiB", "private MiB", "shared MiB", "file Pss MiB",
                     "anon MiB"], body)  # fmt: skip


@contextlib.contextmanager
def launched_server(repository: Path, ensemble: str, python: str, log_path: Path) -> Iterator[dict]:
    """Serve `repository` from a launcher in `python`; yields {"pid", "grpc_url"}; stops it afterwards."""
    launcher = subprocess.Popen(
        [python, "-c", LAUNCHER, str(repository), ensemble, str(log_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = launcher.stdout.readline() if launcher.stdout else ""
        if not line.strip():
            raise RuntimeError(f"the server did not start (exit status {launcher.wait()}); see {log_path}")
        yield json.loads(line)
    finally:
        if launcher.stdin:
            launcher.stdin.close()
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()


def send_requests(url: str, ensemble: str, repository: Path, count: int, seed: int) -> int:
    """Send `count` seeded plain histories (lengths 1-200) through the ensemble; returns how many were answered."""
    import numpy as np

    from ugt_ensemble.client import RecommendClient
    from ugt_ensemble_dev.bench.rules_report import served_item_ids

    item_ids = served_item_ids(repository)
    rng = np.random.default_rng(seed)
    documents = [json.dumps(rng.choice(item_ids, int(n)).tolist()) for n in rng.integers(1, 200, count)]
    with RecommendClient(url, ensemble) as client:
        return sum(answer.ok for answer in client.recommend_results(documents))


def run_memory(
    repository: Path, python: str | None = None, requests: int = 32, note: str = "", seed: int = 0,
    log_path: Path | None = None,
) -> str:  # fmt: skip
    """Serve `repository` (with `python`'s ugt_ensemble), send `requests`, read every process's memory; Markdown."""
    from ugt_ensemble_dev.bench.rules_report import ensemble_name

    ensemble = ensemble_name(repository)
    log = log_path or Path(f"/tmp/ugt-rules-memory-{os.getpid()}.log")
    python = python or sys.executable
    with launched_server(repository.absolute(), ensemble, python, log) as served:
        answered = send_requests(served["grpc_url"], ensemble, repository, requests, seed)
        rows = memory_rows(int(served["pid"]))
    head = f"{repository} served by {python} (log {log}); {answered} of {requests} requests answered before reading."
    return "\n".join([head + (f" {note}" if note else ""), "", memory_table(rows)])
