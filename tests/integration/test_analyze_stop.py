"""`analyze` shows its progress and, sent SIGTERM mid-run, stops everything it started: a real `analyze`
subprocess runs Model Analyzer until perf_analyzer measures, then gets SIGTERM; afterwards no process of its tree
(Model Analyzer, tritonserver, its Python-backend stubs, perf_analyzer) is left, nor their /dev/shm regions.

Before: `analyze` printed one line and nothing more; SIGTERM ended it and left Model Analyzer, tritonserver,
its stubs and perf_analyzer running (they sit in sessions of their own)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ugt_ensemble.server.stubs import proc_stat
from ugt_ensemble.tools.model_analyzer import analyzer_dir

TOOLS = ("model-analyzer", "tritonserver", "triton_python_backend_stub", "perf_analyzer")


@pytest.fixture
def repository(built, tmp_path):
    _, result = built
    target = tmp_path / "ensemble"
    shutil.copytree(result.repository, target)
    return target


def test_sigterm_mid_run_leaves_no_process_of_its_tree(repository):
    if shutil.which("model-analyzer", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("model-analyzer is not installed (pip install 'ugt-ensemble[analyze]')")
    command = [sys.executable, "-m", "ugt_ensemble", "analyze", "--model-repository", str(repository),
               "--max-concurrency", "2", "--max-instance-count", "1", "--max-batch-size", "2"]  # fmt: skip
    analyze = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(analyze.stdout), daemon=True)
    reader.start()
    seen: dict[int, tuple[str, str]] = {}  # pid -> (start time, command) of every process of its tree
    try:
        deadline = time.monotonic() + 300
        while not _running(seen, "perf_analyzer") or not _running(seen, "triton_python_backend_stub"):
            assert analyze.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no perf_analyzer measurement within 300 s:\n" + "".join(lines)
            _watch(analyze.pid, seen)
            time.sleep(0.2)
        _watch(analyze.pid, seen)
        analyze.send_signal(signal.SIGTERM)
        returncode = analyze.wait(timeout=60)
    finally:
        if analyze.poll() is None:
            analyze.kill()
    reader.join(timeout=10)
    output = "".join(lines)
    assert returncode == 2 and "stopped by SIGTERM" in output, output
    assert "configuration 1 of at most 9:" in output and "measurement 1 (" in output, output  # progress
    kinds = {tool for _, command in seen.values() for tool in TOOLS if tool in command}
    assert kinds == set(TOOLS), kinds
    time.sleep(1)
    left = [f"{pid} {command}" for pid, (start, command) in seen.items() if _start(pid) == start]
    assert not left, "still running after SIGTERM:\n" + "\n".join(left)
    flags = yaml.safe_load((analyzer_dir(repository) / "config.yaml").read_text())["triton_server_flags"]
    prefix = flags["backend-config"].partition("shm-region-prefix-name=")[2]
    assert prefix.startswith("ugt_analyze_") and not list(Path("/dev/shm").glob(f"{prefix}*"))  # stubs' regions


def _watch(root: int, seen: dict[int, tuple[str, str]]) -> None:
    """Add every process now below `root` (read from /proc independently of the code under test)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(stat[1])
    for pid in parents:
        ancestor, hops = pid, 0
        while ancestor not in (root, 0, 1) and hops < 50:
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        if ancestor == root and pid not in seen and (start := _start(pid)) is not None:
            seen[pid] = (start, _command(pid))


def _running(seen: dict[int, tuple[str, str]], tool: str) -> bool:
    return any(tool in command and _start(pid) == start for pid, (start, command) in seen.items())


def _start(pid: int) -> str | None:
    stat = proc_stat(pid)
    return stat[19] if stat is not None and stat[0] != "Z" else None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
