"""`run_benchmark`: drive the chosen targets at each concurrency and write the reports."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ugt_ensemble.bench.checks import TargetCheck, check_targets, checks_markdown
from ugt_ensemble.bench.cpu import CpuMeter, cpu_markdown
from ugt_ensemble.bench.loadgen import LoadSpec, run_load
from ugt_ensemble.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble.bench.perf_runs import as_run_stats, breakdown_markdown, run_perf_analyzer
from ugt_ensemble.bench.report import markdown_table, plot, target_legend, write_csv
from ugt_ensemble.bench.stats import RunStats, median_run
from ugt_ensemble.bench.targets import TARGETS, make_target
from ugt_ensemble.bench.workload import LengthDistribution, RepositoryInfo, Workload, make_workload
from ugt_ensemble.errors import ConfigError

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure.

    Attributes:
        targets: names from `ugt_ensemble.bench.targets.TARGETS`, measured in turn at each concurrency.
        concurrency: requests in flight, one run per value.
        requests / duration_s: per run, exactly one of them (a count, or seconds).
        warmup: requests sent (and discarded) before each run.
        history_lengths: `LengthDistribution` spec: "100", "32-1024" (log-uniform) or "32,128,1024".
        histories: distinct seeded histories, cycled through.
        malformed_share: share of requests that are malformed on purpose (failures are counted).
        rounds: interleaved repetitions of every (concurrency, target) run; the report keeps each
            pair's median-throughput run (a shared machine drifts over minutes).
        load: run the Python asynchronous load generator.
        perf_analyzer: also run NVIDIA perf_analyzer (per-step breakdown) for the targets it can drive.
    """

    targets: tuple[str, ...] = ("ensemble",)
    concurrency: tuple[int, ...] = (1, 8)
    requests: int | None = 500
    duration_s: float | None = None
    warmup: int = 50
    history_lengths: str = "32-1024"
    histories: int = 256
    malformed_share: float = 0.0
    seed: int = 0
    rounds: int = 1
    load: bool = True
    perf_analyzer: bool = False
    perf_measurement_ms: int = 4000

    def __post_init__(self) -> None:
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets:
            raise ConfigError(f"`targets` {unknown or '()'} invalid; choose from {', '.join(TARGETS)}")
        if not self.concurrency or min(self.concurrency) < 1:
            raise ConfigError(f"`concurrency` must be positive ints, got {self.concurrency}")
        LoadSpec(self.concurrency[0], self.requests, self.duration_s, self.warmup)  # validates the rest
        LengthDistribution(self.history_lengths)
        if self.rounds < 1:
            raise ConfigError(f"`rounds` must be >= 1, got {self.rounds}")
        if not (self.load or self.perf_analyzer):
            raise ConfigError("nothing to run: enable the load generator or perf_analyzer")


@dataclass
class BenchmarkResult:
    """Runs, target checks and the files written."""

    config: BenchmarkConfig
    stats: list[RunStats]
    checks: list[TargetCheck]
    perf: dict[str, list[PerfAnalyzerResult]] = field(default_factory=dict)
    perf_checks: list[TargetCheck] = field(default_factory=list)
    cpu_load: list[tuple[str, int, dict[str, float]]] = field(default_factory=list)
    cpu_perf: list[tuple[str, int, dict[str, float]]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def run_benchmark(
    config: BenchmarkConfig,
    url: str,
    info: RepositoryInfo,
    output_dir: Path | None = None,
    show_progress: bool = True,
    server_pid: int | None = None,
) -> BenchmarkResult:
    """Measure every target at every concurrency; write CSV/Markdown/PNG/JSON under `output_dir`.

    With `server_pid` (a tritonserver on this machine), also the server CPU per request by process.
    """
    workload = make_workload(
        info, LengthDistribution(config.history_lengths), config.histories, config.malformed_share, config.seed
    )
    meter = CpuMeter(server_pid, url) if server_pid else None
    result = BenchmarkResult(config, [], [])
    if config.load:
        result.stats = _run_load(config, url, info, workload, show_progress, meter, result.cpu_load)
        result.checks = check_targets(result.stats)
    if config.perf_analyzer:
        output = Path(output_dir or ".") / "perf_analyzer"
        result.perf = run_perf_analyzer(
            url,
            info,
            workload,
            config.targets,
            config.concurrency,
            output,
            config.perf_measurement_ms,
            meter,
            result.cpu_perf,
            config.rounds,
        )
        result.perf_checks = check_targets(as_run_stats(result.perf))
    if output_dir is not None:
        result.files = write_outputs(result, Path(output_dir))
    return result


def _run_load(
    config: BenchmarkConfig,
    url: str,
    info: RepositoryInfo,
    workload: Workload,
    show_progress: bool,
    meter: CpuMeter | None,
    cpu_rows: list,
) -> list[RunStats]:
    targets = [make_target(name, info, workload) for name in config.targets]
    runs: dict[tuple[str, int], list[tuple[RunStats, dict]]] = {}
    for _ in range(config.rounds):
        for concurrency in config.concurrency:
            spec = LoadSpec(concurrency, config.requests, config.duration_s, config.warmup)
            for target in targets:  # interleaved, so slow drift of the machine affects every target alike
                with meter.measure(target.model) if meter else contextlib.nullcontext({}) as cpu:
                    run = run_load(target, url, spec, show_progress)
                LOGGER.info(
                    "%-14s c=%-3d %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  ok %d  failed %d",
                    run.target,
                    run.concurrency,
                    run.throughput,
                    run.p50_ms,
                    run.p99_ms,
                    run.succeeded,
                    run.failed,
                )
                runs.setdefault((target.name, concurrency), []).append((run, cpu))
    stats = []
    for (name, concurrency), attempts in runs.items():
        run, cpu = median_run(attempts, key=lambda attempt: attempt[0].throughput)
        stats.append(run)
        if cpu:
            cpu_rows.append((name, concurrency, cpu))
    return sorted(stats, key=lambda s: (s.concurrency, config.targets.index(s.target)))


def write_outputs(result: BenchmarkResult, output_dir: Path) -> dict[str, Path]:
    """bench.csv, bench.md, bench.png (when matplotlib is there) and results.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": write_csv(result.stats, output_dir / "bench.csv")}
    plotted = result.stats or as_run_stats(result.perf)
    picture = plot(plotted, output_dir / "bench.png", f"history lengths {result.config.history_lengths}")
    if picture:
        files["png"] = picture
    files["md"] = output_dir / "bench.md"
    files["md"].write_text(result_markdown(result, picture.name if picture else None), encoding="utf-8")
    files["json"] = output_dir / "results.json"
    files["json"].write_text(
        json.dumps(
            {
                "config": asdict(result.config),
                "runs": [s.as_row() for s in result.stats],
                "checks": [asdict(c) for c in result.checks],
                "perf_analyzer": {t: [asdict(r) for r in runs] for t, runs in result.perf.items()},
                "perf_analyzer_checks": [asdict(c) for c in result.perf_checks],
                "server_cpu_ms_per_request": {
                    "python_client": [{"target": t, "concurrency": c, **cpu} for t, c, cpu in result.cpu_load],
                    "perf_analyzer": [{"target": t, "concurrency": c, **cpu} for t, c, cpu in result.cpu_perf],
                },
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return files


def result_markdown(result: BenchmarkResult, picture: str | None) -> str:
    """The runs as Markdown: legend, table, target checks, plot."""
    c = result.config
    amount = f"{c.requests} requests" if c.requests else f"{c.duration_s:g} s"
    rounds = f" Each row is the median-throughput run of {c.rounds} interleaved rounds." if c.rounds > 1 else ""
    parts = [
        f"History lengths `{c.history_lengths}`, {c.histories} distinct histories, {amount} per run after "
        f"{c.warmup} warm-up requests, malformed share {c.malformed_share:g}.{rounds}\n",
        target_legend(c.targets) + "\n",
    ]
    if result.stats:
        parts += [
            "### Python asynchronous gRPC client\n",
            "Latencies in ms (client side, gRPC round trip), throughput in successful requests per second.\n",
            markdown_table(result.stats),
        ]
    if result.checks:
        parts += ["", checks_markdown(result.checks)]
    if result.cpu_load:
        parts += ["", "Server CPU per request (ms), by process:\n", cpu_markdown(result.cpu_load)]
    if result.perf:
        parts += ["", "### perf_analyzer\n", markdown_table(as_run_stats(result.perf))]
        if result.perf_checks:
            parts += ["", checks_markdown(result.perf_checks)]
        parts += ["", "Where the time goes, per request (server side, microseconds):\n"]
        parts += [breakdown_markdown(result.perf)]
        if result.cpu_perf:
            parts += ["", "Server CPU per request (ms), by process:\n", cpu_markdown(result.cpu_perf)]
    if picture:
        parts += ["", f"![latency against throughput]({picture})"]
    return "\n".join(parts) + "\n"
