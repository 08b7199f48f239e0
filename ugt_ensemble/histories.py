"""Synthetic user histories for demos, export validation, tests and benchmarks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import EVENT_TYPES
from ugt_ensemble.runtime.errors import ConfigError
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories

Event = int | dict


def random_history(
    item_ids: np.ndarray, length: int, rng: np.random.Generator, typed_share: float = 0.3
) -> list[Event]:
    """`length` events over `item_ids`; about `typed_share` of them are typed event objects."""
    picks = rng.choice(item_ids, size=length)
    typed = rng.random(length) < typed_share
    kinds = rng.integers(0, len(EVENT_TYPES), length)
    return [
        {"item_id": int(item), "type": EVENT_TYPES[kind]} if is_typed else int(item)
        for item, is_typed, kind in zip(picks, typed, kinds)
    ]


def history_json(events: list[Event]) -> str:
    """The HISTORY document of a list of events (compact JSON)."""
    return json.dumps(events, separators=(",", ":"))


def random_encoder_batch(
    index: CatalogIndex, batch: int, length: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Packed encoder tensors of shape (batch, length) for random histories of 0..length events.

    Row 0 is always full so the batch really has `length` columns; other rows have random lengths
    (padding included), some with items unknown to the catalog.
    """
    histories = []
    for row in range(batch):
        count = length if row == 0 else int(rng.integers(0, length + 1))
        ids = rng.choice(index.item_ids, size=count)
        if row % 4 == 3 and count:
            ids[rng.integers(0, count)] = -12345  # not in the catalog: skipped by packing
        types = rng.integers(1, len(EVENT_TYPES) + 1, count)
        histories.append(History(ids.astype(np.int64), types.astype(np.int64)))
    packed = pack_histories(histories, index, PackingConfig(max_seq_length=length, buckets=(length,)))
    return packed.tensors


@dataclass(frozen=True)
class LengthDistribution:
    """History lengths: "100" (fixed), "32-1024" (log-uniform), or "32,128,1024" (uniform choice)."""

    spec: str
    values: tuple[int, ...] = field(init=False, repr=False)
    log_uniform: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        spec = self.spec.replace(" ", "")
        if not re.fullmatch(r"\d+(-\d+|(,\d+)+)?", spec):
            raise ConfigError(f"history lengths {self.spec!r}: use N, LOW-HIGH or N1,N2,...")
        values = tuple(int(v) for v in re.split(r"[-,]", spec))
        if "-" in spec and values[0] > values[1]:
            raise ConfigError(f"history lengths {self.spec!r}: LOW must be <= HIGH")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "log_uniform", "-" in spec)

    @property
    def bounds(self) -> tuple[int, int]:
        return min(self.values), max(self.values)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.log_uniform:
            low, high = self.bounds
            return np.exp(rng.uniform(np.log(max(low, 1)), np.log(high + 1), n)).astype(np.int64).clip(low, high)
        return rng.choice(np.array(self.values), n)
