"""`ConstraintData` and the catalog index's folder form: tables, save/load as read-only memory maps, the
older .npz index, and the errors that name the file, the cap or the set at fault."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from ugt_ensemble.catalog.prefix_tables import PrefixTables
from ugt_ensemble.runtime.catalog_index import CatalogIndex, CatalogIndexError, is_mapped
from ugt_ensemble.runtime.constraint_data import (
    MAX_INTERSECTION_REMOVALS,
    META_FILE,
    ConstraintData,
    ConstraintDataError,
)
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, RULE_DTYPES, TABLE_NAMES, default_fanout_caps
from ugt_ensemble.runtime.errors import ConfigError, RequestError
from ugt_ensemble.runtime.rule_request import MAX_EXCLUDED_ITEMS, MAX_SETS_PER_REQUEST, RuleRequest
from ugt_ensemble.runtime.rules import eligible_mask, pack_rules


def random_index(n: int, seed: int = 0, sizes: tuple[int, int, int] = CODEBOOK_SIZES) -> CatalogIndex:
    """n items with distinct random codes and ids in random order."""
    rng = np.random.default_rng(seed)
    space = sizes[0] * sizes[1] * sizes[2]
    keys = np.unique(rng.integers(0, space, size=int(n * 1.1) + 10))[:n]
    rng.shuffle(keys)
    codes = np.stack([keys // (sizes[1] * sizes[2]), keys // sizes[2] % sizes[1], keys % sizes[2]], axis=1)
    return CatalogIndex(rng.choice(4 * n, size=n, replace=False).astype(np.int64), codes, sizes)


@pytest.fixture(scope="module")
def small() -> tuple[CatalogIndex, dict[str, np.ndarray]]:
    index = random_index(3_000, seed=1, sizes=(16, 32, 64))
    rng = np.random.default_rng(2)
    return index, {"in_stock": rng.random(len(index)) < 0.7, "category=books": index.codes[:, 0] < 4}


def test_tables_are_the_prefix_tables_padded_by_the_caps(small):
    index, sets = small
    data = ConstraintData.build(index, sets)
    reference = PrefixTables.from_codes(index.codes, index.codebook_sizes)
    assert data.fanout_caps == default_fanout_caps(reference.max_l2_children, reference.max_l3_children, (16, 32, 64))
    tables, (c2, c3) = data.tables(), data.fanout_caps
    p, n = len(reference.pair_l2), len(index)
    assert tables["table_l2_offset"].tolist() == reference.l2_offset.tolist()
    assert tables["table_l2_count"].tolist() == reference.l2_count.tolist()
    for name, values in (
        ("pair_l2", reference.pair_l2),
        ("l3_offset", reference.l3_offset),
        ("l3_count", reference.l3_count),
    ):
        assert tables[f"table_{name}"].tolist() == values.tolist() + [0] * c2
    assert tables["table_item_l3"].tolist() == reference.item_l3.tolist() + [0] * c3
    assert data.set_names == ("category=books", "in_stock")
    order = np.asarray(index.code_order)
    for s, mask in enumerate([np.ones(n, dtype=bool), sets["category=books"], sets["in_stock"]]):
        items = tables["table_set_items"][s]
        assert items[order].tolist() == mask.tolist() and not items[n:].any()
        pairs = np.repeat(np.arange(p), reference.l3_count)
        assert (
            tables["table_set_pairs"][s, :p].tolist()
            == (np.bincount(pairs, weights=items[:n], minlength=p) > 0).tolist()
        )
        assert not tables["table_set_pairs"][s, p:].any()
    assert list(tables) == list(TABLE_NAMES)
    assert all(tables[name].dtype == RULE_DTYPES[name] for name in TABLE_NAMES)


def test_save_and_load_map_read_only_arrays(tmp_path, small):
    index, sets = small
    built = ConstraintData.build(index, sets)
    built.save(tmp_path / "catalog")
    loaded = ConstraintData.load(tmp_path / "catalog")
    assert loaded.fingerprint == built.fingerprint and loaded.set_names == built.set_names
    assert loaded.fanout_caps == built.fanout_caps
    for name, value in loaded.tables().items():
        assert is_mapped(value) and not value.flags.writeable, name
        assert value is loaded.arrays[name], "tables() hands out the mapped arrays themselves"
        assert np.array_equal(value, built.tables()[name])
    for name in ("item_ids", "codes", "codes_by_level", "code_keys", "items_by_code", "code_order"):
        assert is_mapped(getattr(loaded.index, name)), name
        assert np.array_equal(getattr(loaded.index, name), getattr(index, name))
    rules = [RuleRequest(exclude=index.item_ids[:7], sets=("in_stock", "category=books")), RuleRequest()]
    histories = [index.item_ids[10:30], index.item_ids[:2]]
    a, b = pack_rules(rules, histories, built, True), pack_rules(rules, histories, loaded, True)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert {n: m.tolist() for n, m in loaded.named_sets().items()} == {n: m.tolist() for n, m in sets.items()}
    assert ConstraintData.build(loaded.index, loaded.named_sets()).fingerprint == built.fingerprint
    in_memory = ConstraintData.load(tmp_path / "catalog", mmap=False)
    assert not is_mapped(in_memory.tables()["table_set_items"])
    meta = json.loads((tmp_path / "catalog" / META_FILE).read_text())
    assert meta["set_names"] == ["category=books", "in_stock"] and meta["num_items"] == len(index)
    assert meta["set_sizes"] == [len(index), int(sets["category=books"].sum()), int(sets["in_stock"].sum())]


def test_index_folder_and_older_npz_load_alike(tmp_path, small):
    index, _ = small
    index.save(tmp_path / "catalog.npz")
    index.save_dir(tmp_path / "index")
    old, new = CatalogIndex.load(tmp_path / "catalog.npz"), CatalogIndex.load(tmp_path / "index")
    assert is_mapped(new.code_keys) and not is_mapped(old.code_keys)
    for name in ("item_ids", "codes", "codes_by_level", "code_keys", "items_by_code", "code_order"):
        assert np.array_equal(getattr(old, name), getattr(index, name)) and np.array_equal(
            getattr(new, name), getattr(index, name)
        )
    assert np.array_equal(index.code_keys[index.code_order], np.sort(index.code_keys)[index.code_order])
    assert np.array_equal(index.items_by_code[index.code_order], index.item_ids)
    assert old.fingerprint() == new.fingerprint() == index.fingerprint()
    ids = np.array([index.item_ids[3], -1, index.item_ids[9]])
    assert new.code_positions_of(ids).tolist() == [index.code_order[3], index.code_order[9]]
    codes = np.array([index.codes[5], [0, 0, 63], [16, 0, 0]])
    assert new.item_index_of(codes)[0] == index.code_order[5] and new.item_index_of(codes)[2] == -1


def test_load_errors_name_the_file(tmp_path, small):
    index, sets = small
    folder = tmp_path / "catalog"  # files changed after the seal: the checks behind it (tests/unit/test_data_files.py)
    ConstraintData.build(index, sets).save(folder)
    (folder / "table_set_items.npy").unlink()
    with pytest.raises(ConstraintDataError, match=r"table_set_items\.npy: cannot load"):
        ConstraintData.load(folder, verify=False)
    ConstraintData.build(index, sets).save(folder)
    np.save(folder / "table_set_pairs.npy", np.zeros((3, 5), dtype=bool))
    with pytest.raises(ConstraintDataError, match=r"table_set_pairs\.npy: bool \[3, 5\], expected bool"):
        ConstraintData.load(folder, verify=False)
    np.save(folder / "code_order.npy", np.zeros(len(index), dtype=np.int32))
    with pytest.raises(CatalogIndexError, match=r"code_order\.npy: int32"):
        ConstraintData.load(folder, verify=False)
    (folder / META_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ConstraintDataError, match=f"{META_FILE}: cannot read"):
        ConstraintData.load(folder, verify=False)
    (folder / "codes.npy").unlink()
    with pytest.raises(CatalogIndexError, match=r"codes\.npy: cannot load"):
        CatalogIndex.load(folder)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CatalogIndexError, match=r"bad\.npz: cannot load"):
        CatalogIndex.load(tmp_path / "bad.npz")


def test_build_errors_name_the_cap_and_the_set(small):
    index, sets = small
    widest_l2 = PrefixTables.from_codes(index.codes, index.codebook_sizes).max_l2_children
    with pytest.raises(
        ConfigError, match=f"C2cap={widest_l2 - 1}: the catalog's widest level-2 fan-out is {widest_l2}"
    ):
        ConstraintData.build(index, sets, fanout_caps=(widest_l2 - 1, 64))
    with pytest.raises(ConfigError, match="C3cap=1: .* level-3"):
        ConstraintData.build(index, sets, fanout_caps=(32, 1))
    with pytest.raises(ConfigError, match=r"item set 'fresh': expected a bool mask of the catalog's 3000 items"):
        ConstraintData.build(index, {"fresh": np.ones(5, dtype=bool)})
    with pytest.raises(ConfigError, match="item set 'fresh'.*got int64"):
        ConstraintData.build(index, {"fresh": np.ones(len(index), dtype=np.int64)})


def test_request_checks(small):
    index, sets = small
    many = {f"set_{k:03d}": sets["in_stock"] for k in range(60)}
    data = ConstraintData.build(index, {**sets, **many})
    data.check_request(RuleRequest(exclude=index.item_ids[:MAX_EXCLUDED_ITEMS], sets=("in_stock",) * 20))
    with pytest.raises(
        RequestError,
        match=r"unknown item set \"outlet\"; known sets: category=books, in_stock, set_000.*\(\d+ characters\)",
    ):
        data.check_request(RuleRequest(sets=("outlet",)))
    with pytest.raises(RequestError, match=f"at most {MAX_SETS_PER_REQUEST} per request"):
        data.check_request(RuleRequest(sets=tuple(many)[: MAX_SETS_PER_REQUEST + 1]))
    with pytest.raises(RequestError, match=f"exclude: {MAX_EXCLUDED_ITEMS + 1} item ids, at most {MAX_EXCLUDED_ITEMS}"):
        data.check_request(RuleRequest(exclude=np.arange(MAX_EXCLUDED_ITEMS + 1)))
    bare = ConstraintData.build(index)
    with pytest.raises(RequestError, match="known sets: none are defined"):
        bare.check_request(RuleRequest(sets=("in_stock",)))


def test_an_intersection_that_removes_too_much_is_refused():
    n = 4 * MAX_INTERSECTION_REMOVALS
    index = random_index(n, seed=4)
    early, late = np.arange(n) < 0.6 * n, np.arange(n) >= 0.3 * n  # early \ late: 0.3 n items
    data = ConstraintData.build(index, {"early": early, "late": late, "all_but_one": np.arange(n) > 0})
    with pytest.raises(
        RequestError,
        match=f"removes more than {MAX_INTERSECTION_REMOVALS} of the {int(0.6 * n)} items of 'early'; define the comb",
    ):
        data.check_request(RuleRequest(sets=("late", "early")))
    with pytest.raises(RequestError, match="removes more than"):  # refused again, from the cache
        pack_rules([RuleRequest(sets=("early", "late"))], [index.item_ids[:1]], data, False)
    base, removed = data.resolve(RuleRequest(sets=("all_but_one", "early")))
    assert data.set_names[base - 1] == "early" and removed.tolist() == [index.code_order[0]]


def test_a_million_items_build_save_and_load(tmp_path):
    """Loose: the build is vectorised (prints its time for the record; no timing assert on shared cores)."""
    index = random_index(1_000_000, seed=6)
    rng = np.random.default_rng(7)
    sets = {"in_stock": rng.random(len(index)) < 0.9, "one_percent": rng.random(len(index)) < 0.01}
    start = time.perf_counter()
    data = ConstraintData.build(index, sets)
    built = time.perf_counter() - start
    data.save(tmp_path / "catalog")
    size = sum(f.stat().st_size for f in (tmp_path / "catalog").iterdir())
    start = time.perf_counter()
    loaded = ConstraintData.load(tmp_path / "catalog")
    print(f"\n1M items: build {built:.2f} s, load {time.perf_counter() - start:.3f} s, folder {size / 2**20:.0f} MiB")
    rule = RuleRequest(exclude=index.item_ids[:1000], sets=("one_percent", "in_stock"))
    tensors = pack_rules([rule], [index.item_ids[:50]], loaded, True)
    base = int(tensors["rule_set"][0, 0])
    assert loaded.set_names[base - 1] == "one_percent"
    eligible = eligible_mask(loaded.set_members(base)[None], tensors, loaded)
    expected = sets["one_percent"] & sets["in_stock"]
    expected[:1000] = False  # the excluded ids (the history's are among them) are the first 1000 in id order
    assert (
        eligible.sum() == expected.sum() == loaded.set_size(base) - (tensors["rule_removed_items"][0, :, 0] >= 0).sum()
    )
