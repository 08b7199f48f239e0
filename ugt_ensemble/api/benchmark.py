"""`TritonBenchmark`: the Python API's benchmark of a served model, on the project's load generator.

`run(url, model, batch_size, seq_length)` sends requests that each carry `batch_size` histories of
`seq_length` events (HISTORY [batch_size, 1]) at the configured concurrency, after the warm-up, and
returns a `BenchmarkResult` (throughput in requests per second, latencies in ms). `run_sweep` runs the
grid of `test_batch_sizes` x `test_seq_lengths`; `generate_report` writes the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ugt_ensemble.client.load import LoadSpec, run_load
from ugt_ensemble.client.load_results import BenchmarkResult
from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.errors import UgtEnsembleError
from ugt_ensemble.histories import history_json, random_history

LOGGER = logging.getLogger(__name__)
DEFAULT_REPOSITORY = Path("ensemble")


@dataclass
class HistoryBatches:
    """A load-generator target: request i carries `histories[i]`, a batch of HISTORY documents."""

    model: str
    workload: Sequence[list[bytes]]
    name: str = "ensemble"
    _inputs: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        from ugt_ensemble.client.grpc_client import history_tensor

        self._inputs = [[history_tensor(batch)] for batch in self.workload]

    async def request(self, client, i: int) -> None:  # noqa: ANN001 - tritonclient's aio client
        await client.infer(self.model, self._inputs[i])


class TritonBenchmark:
    """Throughput and latency of a served model over gRPC: `run`, `run_sweep`, `generate_report`."""

    def __init__(self, config: BenchmarkConfig | None = None, show_progress: bool = False) -> None:
        self.config = config or BenchmarkConfig()
        self.show_progress = show_progress

    def run(
        self,
        triton_url: str | None = None,
        model_name: str = "ugt_recommend",
        batch_size: int = 1,
        seq_length: int = 100,
    ) -> BenchmarkResult:
        """Load `model_name` with requests of `batch_size` histories of `seq_length` events."""
        c = self.config
        rng = np.random.default_rng(c.seed)
        ids = self._item_ids()
        batches = [
            [history_json(random_history(ids, seq_length, rng)).encode() for _ in range(batch_size)]
            for _ in range(max(1, c.histories // batch_size))
        ]
        spec = LoadSpec(c.concurrency[0], c.num_requests, c.duration_s, c.num_warmup_requests)
        result = run_load(HistoryBatches(model_name, batches), triton_url or c.triton_url, spec, self.show_progress)
        LOGGER.info("batch %d, seq %d: %s", batch_size, seq_length, result.summary())
        return result

    def run_sweep(self, triton_url: str | None = None, model_name: str = "ugt_recommend") -> dict[str, BenchmarkResult]:
        """`run` over `test_batch_sizes` x `test_seq_lengths`; keys like "batch8_seq128"."""
        c = self.config
        return {
            f"batch{b}_seq{t}": self.run(triton_url, model_name, b, t)
            for b in c.test_batch_sizes
            for t in c.test_seq_lengths
        }

    def generate_report(self, results: dict[str, BenchmarkResult], output_path: str | Path | None = None) -> str:
        """A plain-text table of `results` (written to `output_path` when given)."""
        lines = [
            f"{'run':<20} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'ok':>7} {'failed':>7}",
            *(
                f"{name:<20} {r.throughput:>9.1f} {r.latency_p50:>8.2f} {r.latency_p90:>8.2f} {r.latency_p99:>8.2f} "
                f"{r.successful_requests:>7} {r.failed_requests:>7}"
                for name, r in results.items()
            ),
        ]
        report = "\n".join(lines) + "\n"
        if output_path is not None:
            Path(output_path).write_text(report, encoding="utf-8")
        return report

    def _item_ids(self) -> np.ndarray:
        """Item ids of the served catalog (read from the repository), else ids 1..10000 with a warning."""
        from ugt_ensemble.repository.inspect import RepositoryInfo

        repository = self.config.model_repository or DEFAULT_REPOSITORY
        try:
            return RepositoryInfo.read(repository).index.item_ids
        except (UgtEnsembleError, OSError):
            LOGGER.warning("no repository at %s: histories use item ids 1..10000 (unknown ids are skipped)", repository)
            return np.arange(1, 10_001, dtype=np.int64)
