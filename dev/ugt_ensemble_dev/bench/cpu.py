"""Server CPU per request, by process: tritonserver and each Python-backend stub (Linux /proc).

On a CPU-bound machine, throughput is cores / CPU per request, so this table explains the
ratios between targets: it shows what each step of the ensemble costs on top of the model step.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Iterator

from ugt_ensemble.server.probe import served_counts
from ugt_ensemble.server.stubs import proc_stat, stubs_of

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: (target, concurrency, process -> CPU ms per request): one row of `cpu_markdown`.
CpuRow = tuple[str, int, dict[str, float]]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (None once it is gone)."""
    fields = proc_stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def server_processes(server_pid: int) -> dict[str, int]:
    """ "tritonserver" and one entry per backend stub, named by its model ("preprocess", "ugt_trt#2", ...)."""
    found = {"tritonserver": server_pid}
    for stub in stubs_of(server_pid):
        key, n = stub.model, 2
        while key in found:
            key, n = f"{stub.model}#{n}", n + 1
        found[key] = stub.pid
    return found


@dataclass
class CpuMeter:
    """Measures CPU ms per served request of each server process around a block of load."""

    server_pid: int
    url: str
    processes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.processes = server_processes(self.server_pid)

    @contextlib.contextmanager
    def measure(self, model: str) -> Iterator[dict[str, float]]:
        """Yields a dict that, after the block, maps process -> CPU ms per request of `model`."""
        result: dict[str, float] = {}
        before = {name: _cpu_seconds(pid) for name, pid in self.processes.items()}
        served_before = served_counts(self.url, model)[1]
        yield result
        requests = served_counts(self.url, model)[1] - served_before
        for name, pid in self.processes.items():
            now, then = _cpu_seconds(pid), before[name]
            if now is not None and then is not None and requests > 0:
                result[name] = (now - then) / requests * 1e3
        if result:
            result["total"] = sum(result.values())


def cpu_markdown(rows: list[CpuRow]) -> str:
    """(target, concurrency, process -> ms) rows as a Markdown table with one column per process."""
    names = sorted({n for _, _, cpu in rows for n in cpu if n != "total"}) + ["total"]
    lines = ["| target | conc. | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for target, concurrency, cpu in rows:
        cells = " | ".join(f"{cpu[n]:.3f}" if n in cpu else "-" for n in names)
        lines.append(f"| {target} | {concurrency} | {cells} |")
    return "\n".join(lines)
