"""`BenchmarkResult`: throughput and latency percentiles of one load run (the fields the Python API names first)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

PERCENTILES = (50, 90, 95, 99)
#: The identifying fields, first in `as_row` (and so in bench.csv).
IDENTITY = ("target", "model", "concurrency")
T = TypeVar("T")


@dataclass(frozen=True)
class BenchmarkResult:
    """One (target, concurrency) measurement: the Python API's fields first (throughput, latency percentiles,
    request counts), then ours.

    Latencies are in milliseconds; `throughput` counts successful requests per second, and
    `total_requests` = `successful_requests` + `failed_requests`. Latencies are NaN when no request
    succeeded. `first_error` is the first failure's message (failed requests are data, not crashes).
    """

    throughput: float
    latency_p50: float
    latency_p90: float
    latency_p95: float
    latency_p99: float
    latency_avg: float
    latency_min: float
    latency_max: float
    total_requests: int
    successful_requests: int
    failed_requests: int
    target: str = "ensemble"
    model: str = ""
    concurrency: int = 1
    seconds: float = 0.0
    first_error: str = ""

    @classmethod
    def from_samples(
        cls,
        latencies_s: Sequence[float],
        failed: int,
        seconds: float,
        *,
        target: str = "ensemble",
        model: str = "",
        concurrency: int = 1,
        first_error: str = "",
    ) -> BenchmarkResult:
        """From the latencies (seconds) of the successful requests, the failure count and the run's length."""
        ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
        pct = np.percentile(ms, PERCENTILES) if ms.size else np.full(len(PERCENTILES), np.nan)

        def stat(reduce: Callable[[np.ndarray], Any]) -> float:
            return float(reduce(ms)) if ms.size else math.nan

        return cls(
            throughput=ms.size / seconds if seconds > 0 else 0.0,
            latency_p50=float(pct[0]),
            latency_p90=float(pct[1]),
            latency_p95=float(pct[2]),
            latency_p99=float(pct[3]),
            latency_avg=stat(np.mean),
            latency_min=stat(np.min),
            latency_max=stat(np.max),
            total_requests=int(ms.size) + failed,
            successful_requests=int(ms.size),
            failed_requests=failed,
            target=target,
            model=model,
            concurrency=concurrency,
            seconds=seconds,
            first_error=first_error,
        )

    def as_row(self) -> dict[str, Any]:
        """Every field, the identifying ones (target, model, concurrency) first."""
        row = asdict(self)
        return {name: row[name] for name in COLUMNS}

    def summary(self) -> str:
        """One readable line, e.g. "ensemble (ugt_recommend) c=8: 456.6 req/s, p50 16.73 ms, ..."."""
        model = f" ({self.model})" if self.model else ""
        text = (
            f"{self.target}{model} c={self.concurrency}: {self.throughput:.1f} req/s, "
            f"p50 {self.latency_p50:.2f} / p90 {self.latency_p90:.2f} / p95 {self.latency_p95:.2f} / "
            f"p99 {self.latency_p99:.2f} ms (avg {self.latency_avg:.2f}, min {self.latency_min:.2f}, "
            f"max {self.latency_max:.2f}), {self.successful_requests}/{self.total_requests} ok"
        )
        if self.failed_requests:
            text += f", {self.failed_requests} failed"
            text += f" (first: {self.first_error})" if self.first_error else ""
        return text


#: The fields in `as_row` order.
COLUMNS: tuple[str, ...] = IDENTITY + tuple(f.name for f in fields(BenchmarkResult) if f.name not in IDENTITY)


def median_run(attempts: Sequence[T], key: Callable[[T], float]) -> T:
    """The attempt with the median `key` (the upper median for an even count)."""
    if not attempts:
        raise ValueError("median_run of no attempts")
    return sorted(attempts, key=key)[len(attempts) // 2]
