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

from ugt_ensemble.config import BENCH_TARGETS, BenchmarkConfig
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench.machine import describe_machine
from ugt_ensemble_dev.bench.profiles import COMPARE_CONCURRENCY, COMPARE_HISTORY_LENGTHS, SuiteConfig
from ugt_ensemble_dev.bench.runner import BenchReport, result_markdown, run_benchmark

LOGGER = logging.getLogger(__name__)
LOG_HEADING = "## Optimisation log"


def suite_configs(url: str, info: RepositoryInfo, suite: SuiteConfig) -> dict[str, BenchmarkConfig]:
    """The two parts of the suite against the server at `url`."""
    targets = tuple(t for t in BENCH_TARGETS if t != "naive" or info.naive_peer)
    shared = dict(
        triton_url=url,
        duration_s=suite.duration_s,
        perf_analyzer=True,
        perf_measurement_ms=suite.perf_measurement_ms,
        rounds=suite.rounds,
        model_repository=info.path,
    )
    return {
        "compare": BenchmarkConfig(
            targets=targets, concurrency=COMPARE_CONCURRENCY, history_lengths=COMPARE_HISTORY_LENGTHS, **shared
        ),
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
    suite: SuiteConfig = SuiteConfig(),
    show_progress: bool = True,
    command: str = "",
) -> dict[str, BenchReport]:
    """Run both parts and write `report` (Markdown); raw files go under `output_dir`/<part>/."""
    reports = {}
    for part, config in suite_configs(url, info, suite).items():
        LOGGER.info("suite: %s", part)
        shutil.rmtree(output_dir / part, ignore_errors=True)  # no stale files from an earlier run
        reports[part] = run_benchmark(config, info, output_dir / part, show_progress, server_pid)
    report.write_text(suite_markdown(reports, report, output_dir, url, command), encoding="utf-8")
    return reports


def suite_markdown(results: dict[str, BenchReport], report: Path, output_dir: Path, url: str, command: str = "") -> str:
    """The suite's document: machine, both parts, and the optimisation log kept from `report`."""
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
    """`markdown` with its bench.png link relative to the report's folder."""
    try:
        relative = (folder / "bench.png").resolve().relative_to(report.resolve().parent)
    except ValueError:
        relative = (folder / "bench.png").resolve()
    return markdown.replace("(bench.png)", f"({relative})")


def _previous_log(report: Path) -> str:
    """The hand-written text after the log heading of an existing `report`."""
    try:
        text = report.read_text(encoding="utf-8")
    except OSError:
        return "(none yet)"
    return text.split(LOG_HEADING, 1)[1].strip() if LOG_HEADING in text else "(none yet)"
