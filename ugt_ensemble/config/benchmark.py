"""`BenchmarkConfig`: what a benchmark measures (the core API's fields and defaults first, then the harness's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.config.checks import int_tuple, require_non_negative_int, require_positive_int
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.histories import LengthDistribution

#: What the benchmark can load (described in `ugt_ensemble_dev.bench.targets`).
BENCH_TARGETS: tuple[str, ...] = ("ensemble", "model_step", "client_packing", "naive")


@dataclass(frozen=True)
class BenchmarkConfig:
    """The core API's fields (`triton_url` to `test_seq_lengths`) with their defaults, then the harness's.

    Attributes:
        triton_url: gRPC address of the server.
        num_warmup_requests: requests sent (and discarded) before each run.
        num_requests: requests per run (unless `duration_s` is set).
        concurrency: requests in flight; an int, or several for a sweep (one run per value).
        test_batch_sizes, test_seq_lengths: the grid of `TritonBenchmark.run_sweep` (histories per
            request x events per history).
        targets: what to load, from `BENCH_TARGETS`, each measured at each concurrency.
        duration_s: seconds per run instead of a request count.
        history_lengths: lengths of the load generator's histories: "100", "32-1024" (log-uniform)
            or "32,128,1024".
        histories: distinct seeded histories, cycled through.
        malformed_share: share of requests that are malformed on purpose (their failures are counted).
        seed: seed of the histories.
        rounds: interleaved repetitions of every (concurrency, target) run; the report keeps each pair's
            median-throughput run (a shared machine drifts over minutes).
        load: run the Python asynchronous load generator.
        perf_analyzer: also run NVIDIA perf_analyzer (per-step breakdown) for the targets it can drive.
        perf_measurement_ms: perf_analyzer's measurement window.
        model_repository: the served repository, read for its catalog and names (None: "ensemble" if it
            is there, else synthetic item ids).
    """

    triton_url: str = "localhost:8001"
    num_warmup_requests: int = 100
    num_requests: int = 10_000
    concurrency: int | tuple[int, ...] = 1
    test_batch_sizes: tuple[int, ...] = (1, 8, 16, 32)
    test_seq_lengths: tuple[int, ...] = (32, 64, 128, 256)
    targets: tuple[str, ...] = ("ensemble",)
    duration_s: float | None = None
    history_lengths: str = "32-1024"
    histories: int = 256
    malformed_share: float = 0.0
    seed: int = 0
    rounds: int = 1
    load: bool = True
    perf_analyzer: bool = False
    perf_measurement_ms: int = 4000
    model_repository: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "concurrency", int_tuple("concurrency", self.concurrency))
        object.__setattr__(self, "test_batch_sizes", int_tuple("test_batch_sizes", self.test_batch_sizes))
        object.__setattr__(self, "test_seq_lengths", int_tuple("test_seq_lengths", self.test_seq_lengths, low=0))
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.concurrency:
            raise ConfigError("`concurrency` needs at least one value")
        unknown = [t for t in self.targets if t not in BENCH_TARGETS]
        if unknown or not self.targets:
            raise ConfigError(f"`targets` {unknown or '()'} invalid; choose from {', '.join(BENCH_TARGETS)}")
        for name in ("num_requests", "histories", "rounds", "perf_measurement_ms"):
            require_positive_int(name, getattr(self, name))
        require_non_negative_int("num_warmup_requests", self.num_warmup_requests)
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"`duration_s` must be > 0, got {self.duration_s}")
        if not 0.0 <= self.malformed_share < 1.0:
            raise ConfigError(f"`malformed_share` must be in [0, 1), got {self.malformed_share}")
        LengthDistribution(self.history_lengths)
        if not (self.load or self.perf_analyzer):
            raise ConfigError("nothing to run: enable the load generator or perf_analyzer")
        if self.model_repository is not None:
            object.__setattr__(self, "model_repository", Path(self.model_repository))
