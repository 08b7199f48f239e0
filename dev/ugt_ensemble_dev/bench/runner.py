"""`run_benchmark`: drive the chosen targets at each concurrency and write the reports."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ugt_ensemble.client.load import LoadSpec, run_load
from ugt_ensemble.client.load_results import BenchmarkResult, median_run
from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench.checks import TargetCheck, check_targets, checks_markdown
from ugt_ensemble_dev.bench.cpu import CpuMeter, CpuRow, cpu_markdown
from ugt_ensemble_dev.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble_dev.bench.perf_runs import as_benchmark_results, breakdown_markdown, run_perf_analyzer
from ugt_ensemble_dev.bench.report import markdown_table, plot, target_legend, write_csv
from ugt_ensemble_dev.bench.targets import make_target
from ugt_ensemble_dev.bench.workload import Workload, workload_of

LOGGER = logging.getLogger(__name__)


@dataclass
class BenchReport:
    """What `run_benchmark` measured: the Python client's runs and perf_analyzer's, the target checks
    on each, the server CPU per request by process, and the files written."""

    config: BenchmarkConfig
    results: list[BenchmarkResult] = field(default_factory=list)
    checks: list[TargetCheck] = field(default_factory=list)
    perf: dict[str, list[PerfAnalyzerResult]] = field(default_factory=dict)
    perf_checks: list[TargetCheck] = field(default_factory=list)
    cpu_load: list[CpuRow] = field(default_factory=list)
    cpu_perf: list[CpuRow] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def perf_results(self) -> list[BenchmarkResult]:
        """perf_analyzer's runs as `BenchmarkResult`s."""
        return as_benchmark_results(self.perf)


def run_benchmark(
    config: BenchmarkConfig,
    info: RepositoryInfo,
    output_dir: Path | None = None,
    show_progress: bool = True,
    server_pid: int | None = None,
) -> BenchReport:
    """Measure every target at every concurrency against `config.triton_url`; write CSV, Markdown,
    PNG and JSON under `output_dir` when given.

    With `server_pid` (a tritonserver on this machine), also the server CPU per request by process.
    """
    workload = workload_of(config, info)
    meter = CpuMeter(server_pid, config.triton_url) if server_pid else None
    report = BenchReport(config)
    if config.load:
        report.results = _run_load(config, info, workload, show_progress, meter, report.cpu_load)
        report.checks = check_targets(report.results)
    if config.perf_analyzer:
        output = Path(output_dir or ".") / "perf_analyzer"
        report.perf = run_perf_analyzer(config, info, workload, output, meter, report.cpu_perf)
        report.perf_checks = check_targets(report.perf_results)
    if output_dir is not None:
        report.files = write_outputs(report, Path(output_dir))
    return report


def _run_load(
    config: BenchmarkConfig,
    info: RepositoryInfo,
    workload: Workload,
    show_progress: bool,
    meter: CpuMeter | None,
    cpu_rows: list[CpuRow],
) -> list[BenchmarkResult]:
    """Every (round, concurrency, target) run, interleaved; the median-throughput run of each pair."""
    targets = [make_target(name, info, workload) for name in config.targets]
    runs: dict[tuple[str, int], list[tuple[BenchmarkResult, dict[str, float]]]] = {}
    for _ in range(config.rounds):
        for concurrency in config.concurrency:
            spec = LoadSpec.of(config, concurrency)
            for target in targets:  # interleaved, so slow drift of the machine affects every target alike
                with meter.measure(target.model) if meter else contextlib.nullcontext({}) as cpu:
                    run = run_load(target, config.triton_url, spec, show_progress)
                LOGGER.info("%s", run.summary())
                runs.setdefault((target.name, concurrency), []).append((run, cpu))
    results = []
    for (name, concurrency), attempts in runs.items():
        run, cpu = median_run(attempts, key=lambda attempt: attempt[0].throughput)
        results.append(run)
        if cpu:
            cpu_rows.append((name, concurrency, cpu))
    return sorted(results, key=lambda s: (s.concurrency, config.targets.index(s.target)))


def write_outputs(report: BenchReport, output_dir: Path) -> dict[str, Path]:
    """bench.csv, bench.md, bench.png (when matplotlib is there) and results.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": write_csv(report.results, output_dir / "bench.csv")}
    plotted = report.results or report.perf_results
    picture = plot(plotted, output_dir / "bench.png", f"history lengths {report.config.history_lengths}")
    if picture:
        files["png"] = picture
    files["md"] = output_dir / "bench.md"
    files["md"].write_text(result_markdown(report, picture.name if picture else None), encoding="utf-8")
    files["json"] = output_dir / "results.json"
    files["json"].write_text(json.dumps(report_json(report), indent=2, default=str) + "\n", encoding="utf-8")
    return files


def report_json(report: BenchReport) -> dict:
    """Everything measured, as JSON-ready data (results.json)."""

    def cpu(rows: list[CpuRow]) -> list[dict]:
        return [{"target": t, "concurrency": c, **ms} for t, c, ms in rows]

    return {
        "config": asdict(report.config),
        "runs": [s.as_row() for s in report.results],
        "checks": [asdict(c) for c in report.checks],
        "perf_analyzer": {t: [asdict(r) for r in runs] for t, runs in report.perf.items()},
        "perf_analyzer_checks": [asdict(c) for c in report.perf_checks],
        "server_cpu_ms_per_request": {"python_client": cpu(report.cpu_load), "perf_analyzer": cpu(report.cpu_perf)},
    }


def result_markdown(report: BenchReport, picture: str | None) -> str:
    """The runs as Markdown: settings, legend, tables, target checks, plot."""
    parts = [_settings_line(report.config), target_legend(report.config.targets) + "\n"]
    if report.results:
        parts += [
            "### Python asynchronous gRPC client\n",
            "Latencies in ms (client side, gRPC round trip), throughput in successful requests per second.\n",
            markdown_table(report.results),
        ]
    if report.checks:
        parts += ["", checks_markdown(report.checks)]
    if report.cpu_load:
        parts += ["", "Server CPU per request (ms), by process:\n", cpu_markdown(report.cpu_load)]
    if report.perf:
        parts += ["", "### perf_analyzer\n", markdown_table(report.perf_results)]
        if report.perf_checks:
            parts += ["", checks_markdown(report.perf_checks)]
        parts += ["", "Where the time goes, per request (server side, microseconds):\n"]
        parts += [breakdown_markdown(report.perf)]
        if report.cpu_perf:
            parts += ["", "Server CPU per request (ms), by process:\n", cpu_markdown(report.cpu_perf)]
    if picture:
        parts += ["", f"![latency against throughput]({picture})"]
    return "\n".join(parts) + "\n"


def _settings_line(c: BenchmarkConfig) -> str:
    amount = f"{c.num_requests} requests" if c.duration_s is None else f"{c.duration_s:g} s"
    rounds = f" Each row is the median-throughput run of {c.rounds} interleaved rounds." if c.rounds > 1 else ""
    return (
        f"History lengths `{c.history_lengths}`, {c.histories} distinct histories, {amount} per run after "
        f"{c.num_warmup_requests} warm-up requests, malformed share {c.malformed_share:g}.{rounds}\n"
    )
