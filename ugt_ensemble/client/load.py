"""A closed-loop gRPC load client: N concurrent workers, warm-up, then a fixed request count or duration.

Client-side latency per request; failures are counted, never raised. `TritonBenchmark` (the Python API) runs
it, and so does the benchmark harness of the development package (`bench`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Protocol, Sized

import tritonclient.grpc.aio as aioclient
from tqdm import tqdm

from ugt_ensemble.client.load_results import BenchmarkResult
from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.errors import ConfigError


class Target(Protocol):
    """What the load client sends: `request(client, i)` sends item i of `workload` and raises if it fails."""

    name: str
    model: str
    workload: Sized

    async def request(self, client: aioclient.InferenceServerClient, i: int) -> None: ...


@dataclass(frozen=True)
class LoadSpec:
    """How much load in one run: `num_requests`, or `duration_s` seconds when that is set, after
    `num_warmup_requests` (sent and discarded) at `concurrency` requests in flight."""

    concurrency: int
    num_requests: int
    duration_s: float | None
    num_warmup_requests: int

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"`concurrency` must be >= 1, got {self.concurrency}")
        if self.num_requests < 1 or (self.duration_s is not None and not self.duration_s > 0):
            raise ConfigError("the request count and duration must be positive")
        if self.num_warmup_requests < 0:
            raise ConfigError(f"`num_warmup_requests` must be >= 0, got {self.num_warmup_requests}")

    @classmethod
    def of(cls, config: BenchmarkConfig, concurrency: int) -> LoadSpec:
        """The load of one run of `config` at `concurrency`."""
        return cls(concurrency, config.num_requests, config.duration_s, config.num_warmup_requests)

    @property
    def count(self) -> int | None:
        """Requests per run, or None when the run is timed."""
        return None if self.duration_s is not None else self.num_requests


class _Recorder:
    """Hands out request indices until the run is over and collects latencies and failures."""

    def __init__(self, count: int | None, duration_s: float | None, progress: tqdm | None = None) -> None:
        self.count = count
        self.duration_s = duration_s
        self.progress = progress
        self.latencies: list[float] = []
        self.failed = 0
        self.first_error = ""
        self.issued = 0
        self.start = time.perf_counter()

    def next_index(self) -> int | None:
        if self.count is not None and self.issued >= self.count:
            return None
        if self.duration_s is not None and time.perf_counter() - self.start >= self.duration_s:
            return None
        self.issued += 1
        return self.issued - 1

    def record(self, seconds: float | None, error: BaseException | None = None) -> None:
        if error is None:
            self.latencies.append(seconds)  # type: ignore[arg-type]
        else:
            self.failed += 1
            self.first_error = self.first_error or (str(error).strip().splitlines() or [""])[0][:300]
        if self.progress is not None:
            self.progress.update(1)


async def _worker(target: Target, client: aioclient.InferenceServerClient, recorder: _Recorder) -> None:
    while (i := recorder.next_index()) is not None:
        start = time.perf_counter()
        try:
            await target.request(client, i % len(target.workload))
        except Exception as exc:  # noqa: BLE001 - a failed request is data, not a crash
            recorder.record(None, exc)
        else:
            recorder.record(time.perf_counter() - start)


async def _run_workers(target: Target, client: aioclient.InferenceServerClient, n: int, recorder: _Recorder) -> None:
    await asyncio.gather(*(_worker(target, client, recorder) for _ in range(n)))


async def _drive(target: Target, url: str, spec: LoadSpec, show_progress: bool) -> BenchmarkResult:
    async with aioclient.InferenceServerClient(url) as client:
        if spec.num_warmup_requests:
            await _run_workers(target, client, spec.concurrency, _Recorder(spec.num_warmup_requests, None))
        label = f"{target.name} c={spec.concurrency}"
        hidden = not show_progress or not sys.stderr.isatty()  # a bar only on a terminal, never into logs
        with tqdm(total=spec.count, desc=label, unit="req", disable=hidden, leave=False) as bar:
            recorder = _Recorder(spec.count, spec.duration_s, bar)
            await _run_workers(target, client, spec.concurrency, recorder)
            elapsed = time.perf_counter() - recorder.start
    return BenchmarkResult.from_samples(
        recorder.latencies,
        recorder.failed,
        elapsed,
        target=target.name,
        model=target.model,
        concurrency=spec.concurrency,
        first_error=recorder.first_error,
    )


def run_load(target: Target, url: str, spec: LoadSpec, show_progress: bool = True) -> BenchmarkResult:
    """Measure `target` at `spec.concurrency` against the server at `url` (gRPC)."""
    return asyncio.run(_drive(target, url, spec, show_progress))
