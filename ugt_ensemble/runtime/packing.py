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
from .contract import ENCODER_CODE_INPUTS, ENCODER_MASK, ENCODER_POSITIONS, ENCODER_TOKEN_TYPES
from .errors import ConfigError
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
            raise ConfigError(f"`max_seq_length` must be >= 1, got {self.max_seq_length}")
        if any(b < 1 for b in self.buckets):
            raise ConfigError(f"`length_buckets` must be >= 1, got {self.buckets}")
        kept = sorted({b for b in self.buckets if b < self.max_seq_length} | {self.max_seq_length})
        object.__setattr__(self, "buckets", tuple(kept))
        object.__setattr__(self, "_table", np.array(kept, dtype=np.int64))

    def bucket_lengths(self, lengths: np.ndarray) -> np.ndarray:
        """The padded length of rows holding `lengths` events."""
        return self._table[self._table.searchsorted(lengths.clip(min=1))]


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
    """Pack `histories` into encoder tensors (see the module docstring for the rules).

    One catalog lookup for every event of the batch, then one gather of (l1, l2, l3, token type)
    into a (4, rows, width) block: a fixed number of numpy calls, whatever the batch size.
    """
    n = len(histories)
    counts = np.fromiter(map(len, histories), dtype=np.int64, count=n)
    token_types = _concat([h.token_types for h in histories])
    pos, found = index.positions_of(_concat([h.item_ids for h in histories]))
    if not found.all():  # skip items that are not in the catalog
        pos, token_types = pos[found], token_types[found]
        counts = np.bincount(np.arange(n).repeat(counts)[found], minlength=n)
    lengths = counts.clip(max=config.max_seq_length)
    padded = config.bucket_lengths(lengths)
    width = int(padded.max()) if n else config.buckets[0]
    cols = np.arange(width)
    valid = cols < lengths[:, None]
    first = counts.cumsum() - lengths  # each row's oldest kept event
    take = (first[:, None] + cols).clip(max=max(len(pos) - 1, 0))
    block = np.zeros((4, n, width), dtype=np.int64)
    if len(pos):
        block[:3] = index.codes_by_level[:, pos[take]]
        block[3] = token_types[take]
        block *= valid
    tensors = dict(zip(ENCODER_CODE_INPUTS, block[:3]))
    tensors[ENCODER_POSITIONS] = cols * valid
    tensors[ENCODER_TOKEN_TYPES] = block[3]
    tensors[ENCODER_MASK] = valid.astype(np.float32)
    return PackedBatch(tensors=tensors, lengths=lengths, padded_lengths=padded)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
