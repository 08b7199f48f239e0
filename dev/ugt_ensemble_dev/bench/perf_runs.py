"""`bench --perf-analyzer`: NVIDIA perf_analyzer on the same workload, with the per-step breakdown.

perf_analyzer's C++ client costs the 2-core server far less CPU than a Python client, so its numbers
are the cleaner measurement of the server; the ensemble's composing-model breakdown shows where
time goes (queue, compute input, infer, output) in preprocess, the model step and postprocess.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from pathlib import Path

from ugt_ensemble.client.load_results import BenchmarkResult, median_run
from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble_dev.bench import perf_analyzer as pa
from ugt_ensemble_dev.bench.cpu import CpuMeter, CpuRow
from ugt_ensemble_dev.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble_dev.bench.targets import target_model
from ugt_ensemble_dev.bench.workload import Workload

LOGGER = logging.getLogger(__name__)
#: Targets perf_analyzer can drive (no client-side work).
PERF_TARGETS = ("ensemble", "model_step", "naive")
#: perf_analyzer's stability band (its default is 10 %); the median over rounds absorbs the rest.
STABILITY_PERCENTAGE = 50
#: One measurement: its result and the server CPU per request by process ({} without a meter).
Attempt = tuple[PerfAnalyzerResult, dict[str, float]]


def run_perf_analyzer(
    config: BenchmarkConfig,
    info: RepositoryInfo,
    workload: Workload,
    output_dir: Path,
    meter: CpuMeter | None = None,
    cpu_rows: list[CpuRow] | None = None,
) -> dict[str, list[PerfAnalyzerResult]]:
    """target -> results, for each target of `config` that perf_analyzer can drive.

    Each (round, concurrency, target) is its own perf_analyzer process, interleaved; per target and
    concurrency the median-throughput run is kept. With a `meter`, that run's server CPU per request
    is appended to `cpu_rows` as (target, concurrency, process -> ms).
    """
    analyzer = pa.PerfAnalyzer.locate()
    output_dir.mkdir(parents=True, exist_ok=True)
    models = {t: target_model(t, info) for t in config.targets if t in PERF_TARGETS}
    models = {t: m for t, m in models.items() if m}
    attempts: dict[tuple[str, int], list[Attempt]] = {}
    with tempfile.TemporaryDirectory(prefix="ugt-perf-input-") as inputs:  # large; the reports stay small
        data = {t: pa.write_input_data(Path(inputs) / f"{t}.json", _input_rows(t, workload)) for t in models}
        for round_no in range(1, config.rounds + 1):
            for value in config.concurrency:
                for target, model in models.items():
                    LOGGER.info("perf_analyzer: %s (%s) at concurrency %d, round %d", target, model, value, round_no)
                    folder = output_dir / f"c{value}" / f"round{round_no}"
                    with meter.measure(model) if meter else contextlib.nullcontext({}) as cpu:
                        measured = _measure(analyzer, config, model, data[target], value, folder)
                    attempts.setdefault((target, value), []).extend((r, cpu) for r in measured if r.ok)
    return _medians(attempts, list(models), config.rounds, cpu_rows)


def _measure(
    analyzer: pa.PerfAnalyzer, config: BenchmarkConfig, model: str, data: Path, concurrency: int, folder: Path
) -> list[PerfAnalyzerResult]:
    return pa.run(
        analyzer,
        config.triton_url,
        model,
        data,
        [concurrency],
        folder,
        config.perf_measurement_ms,
        stability_percentage=STABILITY_PERCENTAGE,
    )


def _medians(
    attempts: dict[tuple[str, int], list[Attempt]], targets: list[str], rounds: int, cpu_rows: list[CpuRow] | None
) -> dict[str, list[PerfAnalyzerResult]]:
    """Per target, the median-throughput result at each concurrency (in concurrency order)."""
    results: dict[str, list[PerfAnalyzerResult]] = {t: [] for t in targets}
    for (target, value), tries in sorted(attempts.items(), key=lambda item: item[0][1]):
        if not tries:
            LOGGER.warning(
                "perf_analyzer: no stable measurement of %s at concurrency %d in %d round(s)", target, value, rounds
            )
            continue
        result, cpu = median_run(tries, key=lambda attempt: attempt[0].throughput)
        results[target].append(result)
        if cpu and cpu_rows is not None:
            cpu_rows.append((target, value, cpu))
    return results


def _input_rows(target: str, workload: Workload) -> list[dict]:
    """perf_analyzer input rows: raw histories for the ensemble and the naive peer, tensors for the model step.
    Malformed histories are left out (perf_analyzer stops at a failed request)."""
    valid = [i for i, packed in enumerate(workload.packed) if packed is not None]
    if target == "model_step":
        return [_squeeze(workload.packed[i]) for i in valid]  # type: ignore[arg-type]
    return [{"HISTORY": workload.histories[i]} for i in valid]


def _squeeze(packed: dict) -> dict:
    """(1, T) tensors -> (T,): perf_analyzer adds the batch dimension itself."""
    return {name: array[0] for name, array in packed.items()}


def as_benchmark_results(results: dict[str, list[PerfAnalyzerResult]]) -> list[BenchmarkResult]:
    """perf_analyzer results in the bench's own shape (for tables and target checks); min, max and
    the run's length are not reported by perf_analyzer (NaN)."""
    return [_as_result(target, r) for target, runs in results.items() for r in runs if r.ok]


def _as_result(target: str, r: PerfAnalyzerResult) -> BenchmarkResult:
    nan = math.nan
    avg = nan if r.avg_latency_us is None else r.avg_latency_us / 1e3
    return BenchmarkResult(
        throughput=r.throughput,
        latency_p50=r.p50_us / 1e3,
        latency_p90=r.p90_us / 1e3,
        latency_p95=r.p95_us / 1e3,
        latency_p99=r.p99_us / 1e3,
        latency_avg=avg,
        latency_min=nan,
        latency_max=nan,
        total_requests=r.request_count,
        successful_requests=r.request_count,
        failed_requests=0,
        target=target,
        model=r.model,
        concurrency=r.concurrency,
        seconds=nan,
    )


def breakdown_markdown(results: dict[str, list[PerfAnalyzerResult]]) -> str:
    """Per composing model: average batch, queue, compute input / infer / output (microseconds per request)."""
    lines = [
        "| model | conc. | step | avg batch | queue | compute input | compute infer | compute output |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for runs in results.values():
        for r in (r for r in runs if r.ok):
            for step in ([r.server] if r.server and not r.steps else []) + list(r.steps):
                lines.append(
                    f"| {r.model} | {r.concurrency} | {step.model} | {step.avg_batch:.1f} | {step.queue_us:.0f} | "
                    f"{step.compute_input_us:.0f} | {step.compute_infer_us:.0f} | {step.compute_output_us:.0f} |"
                )
    return "\n".join(lines)
