"""Benchmark workloads: seeded histories of a chosen length distribution, read from a repository.

Everything a client needs comes from the emitted repository itself (catalog index, packing
parameters, model names), so a benchmark exercises exactly what is served.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.repository.manifest import read_manifest
from ugt_ensemble.repository.render import CATALOG_FILE
from ugt_ensemble.repository.rules import parse_config
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.history import parse_history
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories

#: A request the server must refuse (unknown event type), for `malformed_share`.
MALFORMED_HISTORY = '[{"item_id": 1, "type": "not-an-event"}]'


@dataclass(frozen=True)
class LengthDistribution:
    """History lengths: "100" (fixed), "32-1024" (log-uniform), or "32,128,1024" (uniform choice)."""

    spec: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d+(-\d+|(,\d+)+)?", self.spec.replace(" ", "")):
            raise ConfigError(f"history lengths {self.spec!r}: use N, LOW-HIGH or N1,N2,...")
        values = [int(v) for v in re.split(r"[-,]", self.spec.replace(" ", ""))]
        if "-" in self.spec and values[0] > values[1]:
            raise ConfigError(f"history lengths {self.spec!r}: LOW must be <= HIGH")
        if min(values) < 0:
            raise ConfigError(f"history lengths {self.spec!r}: lengths must be >= 0")

    @property
    def bounds(self) -> tuple[int, int]:
        values = [int(v) for v in re.split(r"[-,]", self.spec.replace(" ", ""))]
        return min(values), max(values)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        spec = self.spec.replace(" ", "")
        if "-" in spec:
            low, high = self.bounds
            return np.exp(rng.uniform(np.log(low), np.log(high + 1), n)).astype(np.int64).clip(low, high)
        return rng.choice(np.array([int(v) for v in spec.split(",")]), n)


@dataclass(frozen=True)
class RepositoryInfo:
    """What a benchmark client reads from a built repository."""

    path: Path
    ensemble: str
    model_step: str
    naive_peer: str | None
    index: CatalogIndex
    packing: PackingConfig

    @classmethod
    def read(cls, repository: str | Path) -> RepositoryInfo:
        path = Path(repository)
        try:
            manifest = read_manifest(path)
        except InputFileError as exc:
            raise InputFileError(f"{exc}; benchmark a repository written by `python -m ugt_ensemble build`") from None
        triton = manifest["triton"]
        pre = parse_config((path / triton["preprocess_name"] / "config.pbtxt").read_text(), "preprocess config")
        params = {k: v.string_value for k, v in pre.parameters.items()}
        packing = PackingConfig(
            int(params["max_seq_length"]), tuple(int(b) for b in params["length_buckets"].split(","))
        )
        return cls(
            path=path,
            ensemble=manifest["ensemble"],
            model_step=triton["model_name"],
            naive_peer=triton["naive_peer_name"] if triton.get("naive_peer") else None,
            index=CatalogIndex.load(path / triton["preprocess_name"] / "1" / CATALOG_FILE),
            packing=packing,
        )


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


def pack_one(history: str, info: RepositoryInfo) -> dict[str, np.ndarray]:
    """Client-side packing of one history, exactly as the preprocess model does it."""
    return pack_histories([parse_history(history)], info.index, info.packing).rows(0, 1)
