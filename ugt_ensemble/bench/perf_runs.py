"""`bench --perf-analyzer`: NVIDIA perf_analyzer on the same workload, with the per-step breakdown.

perf_analyzer's C++ client costs the 2-core server far less CPU than a Python client, so its numbers
are the cleaner measurement of the server; the ensemble's composing-model breakdown shows where
time goes (queue, compute input, infer, output) in preprocess, the model step and postprocess.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Sequence

from ugt_ensemble.bench import perf_analyzer as pa
from ugt_ensemble.bench.cpu import CpuMeter
from ugt_ensemble.bench.perf_analyzer_output import PerfAnalyzerResult
from ugt_ensemble.bench.stats import RunStats, median_run
from ugt_ensemble.bench.workload import RepositoryInfo, Workload

LOGGER = logging.getLogger(__name__)
#: Targets perf_analyzer can drive (no client-side work).
PERF_TARGETS = ("ensemble", "model_step", "naive")
#: perf_analyzer's stability band (its default is 10 %); the median over rounds absorbs the rest.
STABILITY_PERCENTAGE = 50


def run_perf_analyzer(
    url: str,
    info: RepositoryInfo,
    workload: Workload,
    targets: Sequence[str],
    concurrency: Sequence[int],
    output_dir: Path,
    measurement_ms: int = 4000,
    meter: CpuMeter | None = None,
    cpu_rows: list | None = None,
    rounds: int = 1,
) -> dict[str, list[PerfAnalyzerResult]]:
    """target -> results, for each of `targets` that perf_analyzer can drive.

    Each (round, concurrency, target) is its own perf_analyzer process, interleaved; per target and
    concurrency the median-throughput run is kept. With a `meter`, that run's server CPU per request
    is appended to `cpu_rows` as (target, concurrency, process -> ms).
    """
    analyzer = pa.PerfAnalyzer.locate()
    output_dir.mkdir(parents=True, exist_ok=True)
    valid = [i for i, packed in enumerate(workload.packed) if packed is not None]
    models = {"ensemble": info.ensemble, "model_step": info.model_step, "naive": info.naive_peer}
    chosen = [t for t in targets if t in PERF_TARGETS and models[t]]
    attempts: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory(prefix="ugt-perf-input-") as inputs:  # large; the reports stay small
        data = {t: pa.write_input_data(Path(inputs) / f"{t}.json", _input_rows(t, workload, valid)) for t in chosen}
        for round_no in range(rounds):
            for value in concurrency:
                for target in chosen:
                    LOGGER.info(
                        "perf_analyzer: %s (%s) at concurrency %d, round %d",
                        target,
                        models[target],
                        value,
                        round_no + 1,
                    )
                    folder = output_dir / f"c{value}" / f"round{round_no + 1}"
                    with meter.measure(models[target]) if meter else contextlib.nullcontext({}) as cpu:
                        measured = pa.run(
                            analyzer,
                            url,
                            models[target],
                            data[target],
                            [value],
                            folder,
                            measurement_ms,
                            stability_percentage=STABILITY_PERCENTAGE,
                        )
                    attempts.setdefault((target, value), []).extend((r, cpu) for r in measured if r.ok)
    results: dict[str, list[PerfAnalyzerResult]] = {t: [] for t in chosen}
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


def _input_rows(target: str, workload: Workload, valid: list[int]) -> list[dict]:
    """perf_analyzer input rows: raw histories for the ensemble and the naive peer, tensors for the model step."""
    if target == "model_step":
        return [_squeeze(workload.packed[i]) for i in valid]  # type: ignore[arg-type]
    return [{"HISTORY": workload.histories[i]} for i in valid]


def _squeeze(packed: dict) -> dict:
    """(1, T) tensors -> (T,): perf_analyzer adds the batch dimension itself."""
    return {name: array[0] for name, array in packed.items()}


def as_run_stats(results: dict[str, list[PerfAnalyzerResult]]) -> list[RunStats]:
    """perf_analyzer results in the bench's own shape (for tables and target checks)."""
    stats = []
    for target, runs in results.items():
        for r in (r for r in runs if r.ok):
            avg = (r.avg_latency_us or float("nan")) / 1e3
            stats.append(
                RunStats(
                    target=target,
                    model=r.model,
                    concurrency=r.concurrency,
                    succeeded=r.request_count,
                    failed=0,
                    seconds=float("nan"),
                    throughput=r.throughput,
                    p50_ms=r.p50_us / 1e3,
                    p90_ms=r.p90_us / 1e3,
                    p95_ms=r.p95_us / 1e3,
                    p99_ms=r.p99_us / 1e3,
                    avg_ms=avg,
                    min_ms=float("nan"),
                    max_ms=float("nan"),
                )
            )
    return stats


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
