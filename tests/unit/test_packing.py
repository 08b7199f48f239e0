import numpy as np

from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories


def _history(ids, types=None):
    ids = np.asarray(ids, dtype=np.int64)
    types = np.ones(len(ids), dtype=np.int64) if types is None else np.asarray(types, dtype=np.int64)
    return History(ids, types)


def _naive_row(history, index, max_len):
    """The packing rules written as a plain loop (reference for the vectorised code)."""
    known = [
        (int(i), int(t)) for i, t in zip(history.item_ids, history.token_types) if i in set(index.item_ids.tolist())
    ]
    return known[-max_len:]


def test_vectorised_packing_matches_the_rules(index, rng):
    config = PackingConfig(max_seq_length=16, buckets=(4, 8))
    histories = [_history([])] + [
        _history(np.where(rng.random(n) < 0.2, -5, rng.choice(index.item_ids, n)), rng.integers(1, 5, n))
        for n in (1, 3, 8, 9, 40)
    ]
    packed = pack_histories(histories, index, config)
    assert packed.padded_lengths.tolist() == config.bucket_lengths(packed.lengths).tolist()
    for row, history in enumerate(histories):
        kept = _naive_row(history, index, 16)
        n = len(kept)
        assert packed.lengths[row] == n
        codes, found = index.codes_of(np.array([i for i, _ in kept], dtype=np.int64))
        assert found.all()
        t = packed.tensors
        for level in range(3):
            assert t[ENCODER_INPUTS[level]][row, :n].tolist() == codes[:, level].tolist()
            assert not t[ENCODER_INPUTS[level]][row, n:].any()
        assert t["encoder_positions"][row, :n].tolist() == list(range(n))
        assert t["encoder_token_types"][row, :n].tolist() == [typ for _, typ in kept]
        assert t["encoder_mask"][row].tolist() == [1.0] * n + [0.0] * (t["encoder_mask"].shape[1] - n)


def test_truncation_keeps_the_most_recent_known_events(index):
    ids = index.item_ids[:10]
    packed = pack_histories([_history(np.r_[ids, [-1, -2]])], index, PackingConfig(max_seq_length=4, buckets=(4,)))
    l1 = packed.tensors["encoder_l1_ids"][0]
    assert l1.tolist() == index.codes_of(ids[-4:])[0][:, 0].tolist()


def test_buckets_and_rows():
    config = PackingConfig(max_seq_length=100, buckets=(8, 32, 500))
    assert config.buckets == (8, 32, 100)
    assert config.bucket_lengths(np.array([0, 1, 8, 9, 33, 100])).tolist() == [8, 8, 8, 32, 100, 100]


def test_rows_cut_to_the_widest_bucket_of_the_slice(index):
    histories = [_history(index.item_ids[:2]), _history(index.item_ids[:20]), _history([])]
    packed = pack_histories(histories, index, PackingConfig(max_seq_length=64, buckets=(4, 32)))
    assert packed.tensors["encoder_mask"].shape == (3, 32)
    assert packed.rows(0, 1)["encoder_mask"].shape == (1, 4)
    assert packed.rows(0, 2)["encoder_l1_ids"].shape == (2, 32)
    assert packed.rows(2, 3)["encoder_mask"].tolist() == [[0.0] * 4]


def test_empty_batch(index):
    packed = pack_histories([], index)
    assert all(t.shape[0] == 0 for t in packed.tensors.values())


def test_catalog_index_round_trip_and_lookups(tmp_path, catalog):
    index = catalog.index()
    path = tmp_path / "catalog.npz"
    index.save(path)
    loaded = CatalogIndex.load(path)
    codes, found = loaded.codes_of(np.array([catalog.item_ids[5], -3]))
    assert found.tolist() == [True, False]
    assert codes[0].tolist() == catalog.codes[5].tolist()
    assert loaded.items_of(np.array([catalog.codes[7], [-1, -1, -1], [0, 0, 0]]))[:2].tolist() == [
        catalog.item_ids[7],
        -1,
    ]
