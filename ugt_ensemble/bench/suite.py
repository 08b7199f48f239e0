"""`bench --suite FILE`: the benchmark behind BENCHMARKS.md, in one run against one server.

1. comparison at history length 100 (all four targets, concurrency 1 and 8; Python client and
   perf_analyzer, with the per-step and per-process breakdowns and the target checks);
2. a length mix (32-1024 events, log-uniform) for the ensemble and the model step, concurrency 1-16.

The document keeps any hand-written text after its "## Optimisation log" heading.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ugt_ensemble.bench.machine import describe_machine
from ugt_ensemble.bench.runner import BenchmarkConfig, BenchmarkResult, result_markdown, run_benchmark
from ugt_ensemble.bench.targets import TARGETS
from ugt_ensemble.bench.workload import RepositoryInfo

LOGGER = logging.getLogger(__name__)
LOG_HEADING = "## Optimisation log"


def suite_configs(
    info: RepositoryInfo, duration_s: float, measurement_ms: int, rounds: int
) -> dict[str, BenchmarkConfig]:
    """The two parts of the suite."""
    targets = tuple(t for t in TARGETS if t != "naive" or info.naive_peer)
    shared = dict(
        requests=None, duration_s=duration_s, perf_analyzer=True, perf_measurement_ms=measurement_ms, rounds=rounds
    )
    return {
        "compare": BenchmarkConfig(targets=targets, concurrency=(1, 8), history_lengths="100", **shared),
        "lengths": BenchmarkConfig(
            targets=("ensemble", "model_step"),
            concurrency=(1, 4, 8, 16),
            history_lengths="32-1024",
            load=False,
            **shared,
        ),
    }


def run_suite(
    report: Path,
    url: str,
    info: RepositoryInfo,
    output_dir: Path,
    server_pid: int | None,
    duration_s: float = 6.0,
    measurement_ms: int = 3000,
    rounds: int = 3,
    show_progress: bool = True,
    command: str = "",
) -> dict[str, BenchmarkResult]:
    """Run both parts and write `report` (Markdown); raw files go under `output_dir`/<part>/."""
    results = {}
    for part, config in suite_configs(info, duration_s, measurement_ms, rounds).items():
        LOGGER.info("suite: %s", part)
        shutil.rmtree(output_dir / part, ignore_errors=True)  # no stale files from an earlier run
        results[part] = run_benchmark(config, url, info, output_dir / part, show_progress, server_pid)
    report.write_text(suite_markdown(results, report, output_dir, url, command), encoding="utf-8")
    return results


def suite_markdown(
    results: dict[str, BenchmarkResult], report: Path, output_dir: Path, url: str, command: str = ""
) -> str:
    machine = describe_machine(url)
    parts = [
        "# Benchmarks",
        "",
        "Regenerate with `bash scripts/benchmarks.sh` (builds `bench-results/repository` with the naive peer, "
        "then runs the suite below against one tritonserver). This is a shared 2-core virtual machine whose speed "
        "drifts over minutes, so every (target, concurrency) pair runs in several interleaved rounds and the "
        "median-throughput run is reported; the raw rounds are under `benchmarks/`.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        *([f"- command: `{command}`"] if command else []),
        "",
        "## 1. Side by side at history length 100",
        "",
        _with_picture_paths(result_markdown(results["compare"], "bench.png"), report, output_dir / "compare"),
        "## 2. History lengths 32-1024 (log-uniform), ensemble and model step",
        "",
        _with_picture_paths(result_markdown(results["lengths"], "bench.png"), report, output_dir / "lengths"),
        LOG_HEADING,
        "",
        _previous_log(report),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _with_picture_paths(markdown: str, report: Path, folder: Path) -> str:
    try:
        relative = (folder / "bench.png").resolve().relative_to(report.resolve().parent)
    except ValueError:
        relative = (folder / "bench.png").resolve()
    return markdown.replace("(bench.png)", f"({relative})")


def _previous_log(report: Path) -> str:
    try:
        text = report.read_text(encoding="utf-8")
    except OSError:
        return "(none yet)"
    return text.split(LOG_HEADING, 1)[1].strip() if LOG_HEADING in text else "(none yet)"
