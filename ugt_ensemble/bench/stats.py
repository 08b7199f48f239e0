"""`RunStats`: throughput and latency percentiles of one benchmark run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class RunStats:
    """One (target, concurrency) measurement. Latencies in milliseconds; throughput counts successes."""

    target: str
    model: str
    concurrency: int
    succeeded: int
    failed: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    first_error: str = ""

    @classmethod
    def from_samples(
        cls,
        target: str,
        model: str,
        concurrency: int,
        latencies_s: list[float],
        failed: int,
        seconds: float,
        first_error: str = "",
    ) -> RunStats:
        ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
        pct = np.percentile(ms, PERCENTILES) if ms.size else np.full(len(PERCENTILES), np.nan)
        stat = (lambda f: float(f(ms))) if ms.size else (lambda f: float("nan"))
        return cls(
            target=target,
            model=model,
            concurrency=concurrency,
            succeeded=int(ms.size),
            failed=failed,
            seconds=seconds,
            throughput=ms.size / seconds if seconds > 0 else 0.0,
            p50_ms=float(pct[0]),
            p90_ms=float(pct[1]),
            p95_ms=float(pct[2]),
            p99_ms=float(pct[3]),
            avg_ms=stat(np.mean),
            min_ms=stat(np.min),
            max_ms=stat(np.max),
            first_error=first_error,
        )

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def median_run(attempts: list, key) -> object:  # noqa: ANN001
    """The attempt with the median `key` (the upper median for an even count)."""
    return sorted(attempts, key=key)[len(attempts) // 2]
