"""A short smoke of `python -m ugt_ensemble bench` against the session's server (no timing assertions)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from ugt_ensemble.repository.inspect import RepositoryInfo

LATENCIES = ("latency_p50", "latency_p90", "latency_p95", "latency_p99", "latency_avg", "latency_min", "latency_max")


def test_bench_reports_every_target_and_counts_failures(built, server, tmp_path):
    _, result = built
    out = tmp_path / "bench"
    command = [
        sys.executable, "-m", "ugt_ensemble", "bench", "--url", server.grpc_url,
        "--model-repository", str(result.repository), "--compare", "--history-lengths", "5-60",
        "--concurrency", "1,2", "--requests", "12", "--warmup", "2", "--histories", "20",
        "--malformed-share", "0.3", "--output-dir", str(out), "-q",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((out / "bench.csv").open()))
    assert {r["target"] for r in rows} == {"ensemble", "model_step", "client_packing", "naive"}
    assert {int(r["concurrency"]) for r in rows} == {1, 2}
    for row in rows:
        for field in ("throughput", *LATENCIES):
            assert float(row[field]) >= 0
        assert int(row["successful_requests"]) + int(row["failed_requests"]) == int(row["total_requests"]) == 12
        assert int(row["failed_requests"]) > 0 and row["first_error"]  # the malformed share is counted, not raised
        assert float(row["latency_p50"]) <= float(row["latency_p99"]) <= float(row["latency_max"])
    summary = json.loads((out / "results.json").read_text())
    assert len(summary["runs"]) == 8 and len(summary["checks"]) == 3
    assert (out / "bench.md").read_text().count("| ensemble |") == 2
    assert (out / "bench.png").stat().st_size > 1000


def test_benchmark_script_against_a_running_server(built, server, tmp_path):
    _, result = built
    step = RepositoryInfo.read(result.repository).model_step
    script = Path(__file__).parents[2] / "scripts" / "benchmark.sh"
    env = {**os.environ, "MODEL_REPOSITORY": str(result.repository), "PYTHON": sys.executable}
    command = [
        "bash",
        str(script),
        "--url",
        server.grpc_url,
        "--model",
        step,
        "--requests",
        "6",
        "--concurrency",
        "1",
        "--output-dir",
        str(tmp_path),
        "--history-lengths",
        "10",
        "-q",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "bench.csv").open()))
    assert [(r["target"], r["model"], r["successful_requests"]) for r in rows] == [("model_step", step, "6")]
