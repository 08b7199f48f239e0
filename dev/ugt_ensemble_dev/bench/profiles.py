"""The settings of the bench's modes (`--tune`, `--suite`, `--compare`), typed and checked like
`BenchmarkConfig`, whose defaults they reuse. Light on purpose: the command line reads their defaults
for its help without importing the benchmark itself (tritonclient)."""

from __future__ import annotations

from dataclasses import dataclass

from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.config.checks import int_tuple, require_positive_int
from ugt_ensemble.errors import ConfigError

_BENCH = BenchmarkConfig()
#: History lengths and concurrency of `--compare` and of the suite's side-by-side part (the target
#: checks compare latency at the lowest concurrency and throughput at 8).
COMPARE_HISTORY_LENGTHS = "100"
COMPARE_CONCURRENCY: tuple[int, ...] = (1, 8)


@dataclass(frozen=True)
class TuneConfig:
    """How `bench --tune` measures each candidate, which model-step settings it tries, and how much
    better a candidate must be to replace the current settings.

    Attributes:
        concurrency: requests in flight; the ensemble is measured at this one value.
        duration_s: seconds per run.
        rounds: interleaved repetitions of every candidate; each candidate's median run is compared.
        num_warmup_requests, history_lengths, histories, seed: the workload, as in `BenchmarkConfig`
            (with its defaults).
        instance_count: the model step's `instance_count` values to try (None: 1, 2 and cores / 2).
        intra_op_threads: ONNX Runtime threads per instance to try (None: 1, 2 and all cores); engines
            without that knob (native backends) ignore it.
        max_queue_delay_us: dynamic-batcher queue delays to try (microseconds).
        margin: a candidate must be faster than the current settings by more than this share.
        p99_slack: and its median p99 at most this share worse.
    """

    concurrency: int = 8
    duration_s: float = 4.0
    rounds: int = 3
    num_warmup_requests: int = _BENCH.num_warmup_requests
    history_lengths: str = _BENCH.history_lengths
    histories: int = _BENCH.histories
    seed: int = _BENCH.seed
    instance_count: tuple[int, ...] | None = None
    intra_op_threads: tuple[int, ...] | None = None
    max_queue_delay_us: tuple[int, ...] = (0, 200)
    margin: float = 0.05
    p99_slack: float = 0.2

    def __post_init__(self) -> None:
        require_positive_int("concurrency", self.concurrency)
        if self.duration_s is None:
            raise ConfigError("`duration_s` is required: each candidate runs for a fixed time")
        self.measurement("")  # checks the workload fields as BenchmarkConfig does
        for name in ("instance_count", "intra_op_threads"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int_tuple(name, getattr(self, name)))
        object.__setattr__(self, "max_queue_delay_us", int_tuple("max_queue_delay_us", self.max_queue_delay_us, 0))
        if self.margin < 0 or self.p99_slack < 0:
            raise ConfigError("`margin` and `p99_slack` must be >= 0")

    def measurement(self, url: str) -> BenchmarkConfig:
        """The `BenchmarkConfig` of one candidate's run: the ensemble at `concurrency` for `duration_s`."""
        return BenchmarkConfig(
            triton_url=url,
            num_warmup_requests=self.num_warmup_requests,
            concurrency=self.concurrency,
            duration_s=self.duration_s,
            history_lengths=self.history_lengths,
            histories=self.histories,
            seed=self.seed,
            rounds=self.rounds,
        )

    def axes(self, cores: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The values to try of (instance_count, intra_op_threads, max_queue_delay_us) on `cores` cores."""
        instances = self.instance_count or tuple(sorted({1, 2, max(1, cores // 2)}))
        threads = self.intra_op_threads or tuple(sorted({1, min(2, cores), cores}))
        return instances, threads, self.max_queue_delay_us


@dataclass(frozen=True)
class SuiteConfig:
    """How long `bench --suite` measures (the report behind BENCHMARKS.md).

    Attributes:
        duration_s: seconds per Python-client run.
        perf_measurement_ms: perf_analyzer's measurement window.
        rounds: interleaved repetitions of every (target, concurrency) pair; the median run is reported.
    """

    duration_s: float = 6.0
    perf_measurement_ms: int = 3000
    rounds: int = 3

    def __post_init__(self) -> None:
        BenchmarkConfig(duration_s=self.duration_s, perf_measurement_ms=self.perf_measurement_ms, rounds=self.rounds)
