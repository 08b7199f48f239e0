"""Pack parsed histories into the six encoder tensors, vectorised over the whole batch.

Rules (the same for the preprocess model, the client and the reference pipeline):
- items that are not in the catalog are skipped; then the most recent `max_seq_length` known
  events are kept, so the encoder always sees as many real events as it can;
- kept events are left-aligned, oldest first, positions 0..n-1; padding has l1=l2=l3=0,
  position 0, token type 0 and mask 0.0;
- each row is padded to the smallest length bucket that holds it (so the model step's dynamic
  batcher sees few distinct shapes); an empty row still gets the smallest bucket, all padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .catalog_index import CatalogIndex
from .contract import ENCODER_INPUTS
from .history import History

#: Default length buckets (capped at, and always ending with, max_seq_length).
DEFAULT_BUCKETS: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class PackingConfig:
    """How histories become encoder tensors."""

    max_seq_length: int = 1024
    buckets: tuple[int, ...] = DEFAULT_BUCKETS

    def __post_init__(self) -> None:
        if self.max_seq_length < 1:
            raise ValueError(f"max_seq_length must be >= 1, got {self.max_seq_length}")
        if any(b < 1 for b in self.buckets):
            raise ValueError(f"length buckets must be >= 1, got {self.buckets}")
        kept = sorted({b for b in self.buckets if b < self.max_seq_length} | {self.max_seq_length})
        object.__setattr__(self, "buckets", tuple(kept))

    def bucket_lengths(self, lengths: np.ndarray) -> np.ndarray:
        """The padded length of rows holding `lengths` events."""
        table = np.asarray(self.buckets, dtype=np.int64)
        return table[np.searchsorted(table, np.maximum(lengths, 1))]


@dataclass
class PackedBatch:
    """Encoder tensors of a batch, each (n, T) with T the largest bucket in the batch.

    `lengths[i]` real events sit in row i; `padded_lengths[i]` is that row's own bucket.
    """

    tensors: dict[str, np.ndarray]
    lengths: np.ndarray
    padded_lengths: np.ndarray

    def rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows [start, stop) cut to the widest bucket among them (views, no copy)."""
        width = int(self.padded_lengths[start:stop].max(initial=1))
        return {name: t[start:stop, :width] for name, t in self.tensors.items()}


def pack_histories(
    histories: Sequence[History], index: CatalogIndex, config: PackingConfig = PackingConfig()
) -> PackedBatch:
    """Pack `histories` into encoder tensors (see the module docstring for the rules)."""
    n = len(histories)
    counts = np.fromiter((len(h) for h in histories), dtype=np.int64, count=n)
    item_ids = _concat([h.item_ids for h in histories])
    token_types = _concat([h.token_types for h in histories])
    codes, found = index.codes_of(item_ids)

    rows = np.repeat(np.arange(n), counts)[found]
    known = np.bincount(rows, minlength=n)
    lengths = np.minimum(known, config.max_seq_length)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(known) - known, known)
    cols = rank - (known - lengths)[rows]
    keep = cols >= 0
    rows, cols = rows[keep], cols[keep]
    picked = np.flatnonzero(found)[keep]

    padded = config.bucket_lengths(lengths)
    width = int(padded.max()) if n else config.buckets[0]
    tensors = {name: np.zeros((n, width), dtype=np.int64) for name in ENCODER_INPUTS[:-1]}
    for level in range(3):
        tensors[ENCODER_INPUTS[level]][rows, cols] = codes[picked, level]
    tensors["encoder_positions"][rows, cols] = cols
    tensors["encoder_token_types"][rows, cols] = token_types[picked]
    mask = np.zeros((n, width), dtype=np.float32)
    mask[rows, cols] = 1.0
    tensors["encoder_mask"] = mask
    return PackedBatch(tensors=tensors, lengths=lengths, padded_lengths=padded)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
