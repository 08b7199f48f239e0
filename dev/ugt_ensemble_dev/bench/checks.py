"""The issue's performance targets, checked on one comparison run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ugt_ensemble.client.load_results import BenchmarkResult

#: Most the ensemble's p50 may exceed the model step's at low concurrency (ms).
MAX_P50_OVERHEAD_MS = 1.0
#: Least share of the model step's throughput the ensemble must reach at high concurrency.
MIN_STEP_THROUGHPUT_SHARE = 0.9
#: Least throughput multiple of the naive peer the ensemble must reach (at equal or lower p99).
MIN_NAIVE_SPEEDUP = 3.0


@dataclass(frozen=True)
class TargetCheck:
    """One target: what is required, what was measured, whether it holds."""

    name: str
    requirement: str
    measured: str
    ok: bool


def _find(stats: Sequence[BenchmarkResult], target: str, concurrency: int) -> BenchmarkResult | None:
    return next((s for s in stats if s.target == target and s.concurrency == concurrency), None)


def check_targets(
    stats: Sequence[BenchmarkResult], low: int | None = None, high: int | None = None
) -> list[TargetCheck]:
    """Ensemble vs model step (overhead) and vs the naive peer, where those runs exist.

    Latency overhead at `low` (default: the lowest concurrency measured), throughput at `high`
    (default: 8 when measured, else the highest).
    """
    levels = sorted({s.concurrency for s in stats}) or [1]
    low = levels[0] if low is None else low
    high = (8 if 8 in levels else levels[-1]) if high is None else high
    checks = [
        _overhead(_find(stats, "ensemble", low), _find(stats, "model_step", low), low),
        _step_throughput(_find(stats, "ensemble", high), _find(stats, "model_step", high), high),
        _naive_speedup(_find(stats, "ensemble", high), _find(stats, "naive", high), high),
    ]
    return [c for c in checks if c is not None]


def _overhead(ens: BenchmarkResult | None, step: BenchmarkResult | None, level: int) -> TargetCheck | None:
    if not (ens and step):
        return None
    extra = ens.latency_p50 - step.latency_p50
    return TargetCheck(
        f"ensemble p50 overhead at concurrency {level}",
        f"ensemble p50 <= model step p50 + {MAX_P50_OVERHEAD_MS:g} ms",
        f"{ens.latency_p50:.2f} ms vs {step.latency_p50:.2f} ms (+{extra:.2f} ms)",
        extra <= MAX_P50_OVERHEAD_MS,
    )


def _step_throughput(ens: BenchmarkResult | None, step: BenchmarkResult | None, level: int) -> TargetCheck | None:
    if not (ens and step):
        return None
    ratio = ens.throughput / max(step.throughput, 1e-9)
    return TargetCheck(
        f"ensemble throughput at concurrency {level}",
        f"ensemble >= {MIN_STEP_THROUGHPUT_SHARE:g} x model step",
        f"{ens.throughput:.0f} vs {step.throughput:.0f} req/s ({ratio:.2f}x)",
        ratio >= MIN_STEP_THROUGHPUT_SHARE,
    )


def _naive_speedup(ens: BenchmarkResult | None, naive: BenchmarkResult | None, level: int) -> TargetCheck | None:
    if not (ens and naive):
        return None
    ratio = ens.throughput / max(naive.throughput, 1e-9)
    return TargetCheck(
        f"ensemble vs naive peer at concurrency {level}",
        f">= {MIN_NAIVE_SPEEDUP:g} x throughput at equal or lower p99",
        f"{ratio:.1f}x throughput; p99 {ens.latency_p99:.1f} vs {naive.latency_p99:.1f} ms",
        ratio >= MIN_NAIVE_SPEEDUP and ens.latency_p99 <= naive.latency_p99,
    )


def checks_markdown(checks: Sequence[TargetCheck]) -> str:
    """The checks as a Markdown table."""
    lines = ["| target | requirement | measured | met |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.requirement} | {c.measured} | {'✓' if c.ok else 'x'} |" for c in checks]
    return "\n".join(lines)
