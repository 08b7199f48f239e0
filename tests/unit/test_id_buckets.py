"""`IdBuckets` finds exactly what a binary search finds, for id layouts the buckets spread and ones they do not."""

import numpy as np
import pytest

from ugt_ensemble.runtime.catalog_index import CatalogIndex, _lookup
from ugt_ensemble.runtime.id_buckets import MIN_KEYS, PROBES, IdBuckets

INT64 = np.iinfo(np.int64)


def _layouts(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "dense": np.arange(1, 5001, dtype=np.int64),
        "gaps": np.unique(rng.integers(0, 10**6, 4000)),
        "hashed 64-bit": np.unique(rng.integers(INT64.min, INT64.max, 4000, dtype=np.int64)),
        "two far clusters": np.r_[np.arange(3000), np.arange(10**15, 10**15 + 3000)].astype(np.int64),
        "negative": np.unique(rng.integers(-(10**9), 10**9, 4000)),
        "extremes": np.array([INT64.min, -1, 0, 1, INT64.max], dtype=np.int64),
        "one item": np.array([42], dtype=np.int64),
    }


@pytest.mark.parametrize("layout", list(_layouts(np.random.default_rng(0))))
def test_a_lookup_equals_the_binary_search(layout):
    rng = np.random.default_rng(1)
    ids = _layouts(np.random.default_rng(0))[layout]
    buckets = IdBuckets(ids)
    assert len(buckets.starts) <= 2 * len(ids) + 3  # about one bucket per item, whatever the ids' range
    present = rng.choice(ids, 500)
    absent = np.r_[ids - 1, ids + 1, INT64.min, INT64.max, rng.integers(INT64.min, INT64.max, 500, dtype=np.int64)]
    keys = np.concatenate([present, absent.astype(np.int64)])
    rng.shuffle(keys)
    pos, found = buckets.lookup(keys)
    want_pos, want_found = _lookup(ids, keys)
    np.testing.assert_array_equal(found, want_found)
    np.testing.assert_array_equal(pos[found], want_pos[want_found])
    assert np.isin(present, keys[found]).all()


def test_crowded_buckets_fall_back_to_the_binary_search():
    ids = np.r_[np.arange(100), [10**12]].astype(np.int64)  # 100 ids share the first bucket
    buckets = IdBuckets(ids)
    assert int(np.diff(buckets.starts).max()) > PROBES
    pos, found = buckets.lookup(ids)
    assert found.all() and (pos == np.arange(len(ids))).all()


def test_the_catalog_index_uses_the_buckets_for_long_queries_only():
    ids = np.arange(10, 10 + 2 * MIN_KEYS, dtype=np.int64)
    index = CatalogIndex(ids, np.zeros((len(ids), 3), dtype=np.int64) + np.arange(len(ids))[:, None] % 7)
    short, long = ids[: MIN_KEYS - 1], np.r_[ids, [0, 10**6]]
    assert "_id_buckets" not in index.__dict__ and index.positions_of(short)[1].all()
    assert "_id_buckets" not in index.__dict__  # a short query never builds them
    pos, found = index.positions_of(long)
    assert found.tolist() == [True] * len(ids) + [False, False] and (pos[: len(ids)] == np.arange(len(ids))).all()
