"""`IdBuckets`: where an item id sits in a sorted id array, in about one memory access per id.

A binary search of 1,000 ids in a 1M-item catalog touches ~20 cache lines per id (~0.2 ms per request with
1,000 exclusions). Here the ids' value range is cut into about as many equal buckets as there are items, and
`starts[b]` is where bucket b begins in the sorted array: an id is compared with the few items of its bucket.
Ids spread over their range (sequential ids, hashed ids) land ~1 per bucket; ids the buckets do not spread (a
few huge clusters) fall back to the binary search, so a lookup is never slower than a few rounds plus it.
"""

from __future__ import annotations

import numpy as np

#: Items a bucket is probed for before the rest of its ids go to the binary search.
PROBES = 3
#: Queries shorter than this use the binary search (its fixed cost is lower for a handful of ids).
MIN_KEYS = 32


class IdBuckets:
    """Bucket starts over `sorted_ids` (int64, strictly increasing); see the module docstring."""

    def __init__(self, sorted_ids: np.ndarray) -> None:
        self.ids = sorted_ids
        n = len(sorted_ids)
        self.low = int(sorted_ids[0]) if n else 0
        span = (int(sorted_ids[-1]) - self.low) if n else 0
        # shift: the smallest with span >> shift < 2 * n, so ~n..2n buckets of 2**shift ids each
        self.shift = max(0, span.bit_length() - max(1, (2 * n - 1).bit_length()) + 1) if n else 0
        buckets = (span >> self.shift) + 2
        counts = np.bincount(self._bucket(sorted_ids), minlength=buckets)
        dtype = np.int32 if n < 2**31 else np.int64
        self.starts = np.zeros(buckets + 1, dtype=dtype)
        np.cumsum(counts, out=self.starts[1:])

    def _bucket(self, ids: np.ndarray) -> np.ndarray:
        """Bucket of each id in [low, low + span] (the caller masks the others)."""
        offset = ids.view(np.uint64) - np.uint64(self.low & 0xFFFFFFFFFFFFFFFF)
        return (offset >> np.uint64(self.shift)).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions of `keys` in the sorted ids, clipped; bool found), as `searchsorted` + compare gives."""
        ids, n = self.ids, len(self.ids)
        pos = np.zeros(len(keys), dtype=np.int64)
        found = np.zeros(len(keys), dtype=bool)
        if n == 0:
            return pos, found
        active = np.flatnonzero((keys >= self.low) & (keys <= ids[-1]))
        bucket = self._bucket(keys[active])
        first, end = self.starts[bucket].astype(np.int64), self.starts[bucket + 1].astype(np.int64)
        for probe in range(PROBES):
            slot = first + probe
            live = slot < end
            if not live.any():
                return pos, found
            active, first, end, slot = active[live], first[live], end[live], slot[live]
            hit = ids[slot] == keys[active]
            pos[active[hit]], found[active[hit]] = slot[hit], True
            active, first, end = active[~hit], first[~hit], end[~hit]
        rest = active[first + PROBES < end]  # buckets with more items than probed: the binary search
        if len(rest):
            at = np.minimum(ids.searchsorted(keys[rest]), n - 1)
            pos[rest], found[rest] = at, ids[at] == keys[rest]
        return pos, found
