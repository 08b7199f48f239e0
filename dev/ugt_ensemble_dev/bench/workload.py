"""Benchmark workloads: seeded histories of a chosen length distribution, read from a repository.

Everything a client needs comes from the emitted repository itself (catalog index, packing
parameters, model names), so a benchmark exercises exactly what is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ugt_ensemble.config import BenchmarkConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.histories import LengthDistribution, history_json, random_history
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.runtime.history import parse_history
from ugt_ensemble.runtime.packing import pack_histories

#: A request the server must refuse (unknown event type), for `malformed_share`.
MALFORMED_HISTORY = '[{"item_id": 1, "type": "not-an-event"}]'


@dataclass(frozen=True)
class Workload:
    """`histories[i]` is a HISTORY document; `packed[i]` its encoder tensors (None if malformed)."""

    histories: tuple[str, ...]
    packed: tuple[dict[str, np.ndarray] | None, ...]

    def __len__(self) -> int:
        return len(self.histories)


def make_workload(
    info: RepositoryInfo, lengths: LengthDistribution, count: int = 256, malformed_share: float = 0.0, seed: int = 0
) -> Workload:
    """`count` seeded histories; a `malformed_share` of them is refused by the server on purpose."""
    if not 0.0 <= malformed_share < 1.0:
        raise ConfigError(f"`malformed_share` must be in [0, 1), got {malformed_share}")
    rng = np.random.default_rng(seed)
    sizes = lengths.sample(count, rng)
    malformed = rng.random(count) < malformed_share
    histories = tuple(
        MALFORMED_HISTORY if bad else history_json(random_history(info.index.item_ids, int(n), rng))
        for n, bad in zip(sizes, malformed)
    )
    packed = tuple(None if bad else pack_one(h, info) for h, bad in zip(histories, malformed))
    return Workload(histories, packed)


def workload_of(config: BenchmarkConfig, info: RepositoryInfo) -> Workload:
    """The workload that `config` describes (history lengths, count, malformed share, seed)."""
    lengths = LengthDistribution(config.history_lengths)
    return make_workload(info, lengths, config.histories, config.malformed_share, config.seed)


def pack_one(history: str, info: RepositoryInfo) -> dict[str, np.ndarray]:
    """Client-side packing of one history, exactly as the preprocess model does it."""
    return pack_histories([parse_history(history)], info.index, info.packing).rows(0, 1)
