"""The issue's performance targets, checked on one comparison run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ugt_ensemble.bench.stats import RunStats


@dataclass(frozen=True)
class TargetCheck:
    """One target: what is required, what was measured, whether it holds."""

    name: str
    requirement: str
    measured: str
    ok: bool


def _find(stats: Sequence[RunStats], target: str, concurrency: int) -> RunStats | None:
    return next((s for s in stats if s.target == target and s.concurrency == concurrency), None)


def check_targets(stats: Sequence[RunStats], low: int | None = None, high: int | None = None) -> list[TargetCheck]:
    """Ensemble vs model step (overhead) and vs the naive peer, where those runs exist.

    Latency overhead at `low` (default: the lowest concurrency measured), throughput at `high`
    (default: 8 when measured, else the highest).
    """
    levels = sorted({s.concurrency for s in stats}) or [1]
    low = levels[0] if low is None else low
    high = (8 if 8 in levels else levels[-1]) if high is None else high
    checks = []
    ens_low, step_low = _find(stats, "ensemble", low), _find(stats, "model_step", low)
    if ens_low and step_low:
        checks.append(
            TargetCheck(
                f"ensemble p50 overhead at concurrency {low}",
                "ensemble p50 <= model step p50 + 1 ms",
                f"{ens_low.p50_ms:.2f} ms vs {step_low.p50_ms:.2f} ms (+{ens_low.p50_ms - step_low.p50_ms:.2f} ms)",
                ens_low.p50_ms <= step_low.p50_ms + 1.0,
            )
        )
    ens_high, step_high, naive_high = (_find(stats, t, high) for t in ("ensemble", "model_step", "naive"))
    if ens_high and step_high:
        ratio = ens_high.throughput / step_high.throughput
        checks.append(
            TargetCheck(
                f"ensemble throughput at concurrency {high}",
                "ensemble >= 0.9 x model step",
                f"{ens_high.throughput:.0f} vs {step_high.throughput:.0f} req/s ({ratio:.2f}x)",
                ratio >= 0.9,
            )
        )
    if ens_high and naive_high:
        ratio = ens_high.throughput / max(naive_high.throughput, 1e-9)
        checks.append(
            TargetCheck(
                f"ensemble vs naive peer at concurrency {high}",
                ">= 3 x throughput at equal or lower p99",
                f"{ratio:.1f}x throughput; p99 {ens_high.p99_ms:.1f} vs {naive_high.p99_ms:.1f} ms",
                ratio >= 3.0 and ens_high.p99_ms <= naive_high.p99_ms,
            )
        )
    return checks


def checks_markdown(checks: Sequence[TargetCheck]) -> str:
    lines = ["| target | requirement | measured | met |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.requirement} | {c.measured} | {'✓' if c.ok else 'x'} |" for c in checks]
    return "\n".join(lines)
