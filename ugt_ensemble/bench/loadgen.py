"""An asynchronous gRPC load generator: N concurrent workers, warm-up, then a fixed request count
or duration. Client-side latency per request; failures are counted, never raised."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

import tritonclient.grpc.aio as aioclient
from tqdm import tqdm

from ugt_ensemble.bench.stats import RunStats
from ugt_ensemble.bench.targets import Target
from ugt_ensemble.errors import ConfigError


@dataclass(frozen=True)
class LoadSpec:
    """How much load: `requests` (count) or `duration_s` (seconds) after `warmup` requests."""

    concurrency: int
    requests: int | None = 500
    duration_s: float | None = None
    warmup: int = 50

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"`concurrency` must be >= 1, got {self.concurrency}")
        if (self.requests is None) == (self.duration_s is None):
            raise ConfigError("give exactly one of a request count and a duration")
        if (self.requests is not None and self.requests < 1) or (self.duration_s is not None and self.duration_s <= 0):
            raise ConfigError("the request count and duration must be positive")


class _Recorder:
    def __init__(self, spec: LoadSpec, progress: tqdm | None) -> None:
        self.spec = spec
        self.progress = progress
        self.latencies: list[float] = []
        self.failed = 0
        self.first_error = ""
        self.issued = 0
        self.start = time.perf_counter()

    def next_index(self) -> int | None:
        spec = self.spec
        if spec.requests is not None and self.issued >= spec.requests:
            return None
        if spec.duration_s is not None and time.perf_counter() - self.start >= spec.duration_s:
            return None
        self.issued += 1
        return self.issued - 1

    def record(self, seconds: float | None, error: BaseException | None = None) -> None:
        if error is None:
            self.latencies.append(seconds)  # type: ignore[arg-type]
        else:
            self.failed += 1
            self.first_error = self.first_error or str(error).strip().splitlines()[0][:300]
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


async def _drive(target: Target, url: str, spec: LoadSpec, show_progress: bool) -> RunStats:
    async with aioclient.InferenceServerClient(url) as client:
        warmup = _Recorder(LoadSpec(spec.concurrency, requests=max(spec.warmup, 1), warmup=0), None)
        await asyncio.gather(*(_worker(target, client, warmup) for _ in range(spec.concurrency)))
        label = f"{target.name} c={spec.concurrency}"
        hidden = not show_progress or not sys.stderr.isatty()  # a bar only on a terminal, never into logs
        with tqdm(total=spec.requests, desc=label, unit="req", disable=hidden, leave=False) as bar:
            recorder = _Recorder(spec, bar)
            await asyncio.gather(*(_worker(target, client, recorder) for _ in range(spec.concurrency)))
            elapsed = time.perf_counter() - recorder.start
    return RunStats.from_samples(
        target.name, target.model, spec.concurrency, recorder.latencies, recorder.failed, elapsed, recorder.first_error
    )


def run_load(target: Target, url: str, spec: LoadSpec, show_progress: bool = True) -> RunStats:
    """Measure `target` at `spec.concurrency` against the server at `url` (gRPC)."""
    return asyncio.run(_drive(target, url, spec, show_progress))
