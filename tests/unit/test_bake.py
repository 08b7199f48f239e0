"""Baking the constraint tables into a rules-aware ONNX model step (`export.bake`), for the native engines.

The reference is the unbaked file fed the same tables: ONNX Runtime on the baked file must give the same
codes and scores, with and without rules, and after a re-bake for another catalog of the same codebooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ugt_ensemble.catalog import Catalog
from ugt_ensemble.catalog.synthetic import synthetic_catalog
from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError, StepContractError
from ugt_ensemble.export.bake import TABLES_KEY, bake_tables, is_baked, tables_file
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.onnx_file import external_files, read_onnx
from ugt_ensemble.export.tensorrt_check import check_tensorrt_compatibility
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES, TABLE_NAMES
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import pack_rules

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "bring_your_own_model"))
from recommender import make_recommender  # noqa: E402

ROWS = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(unbaked ONNX path, catalog, its constraint data with two item sets, the model's fan-out caps)."""
    catalog = synthetic_catalog(2000, seed=3)
    model = make_recommender(catalog, d_model=16, max_length=32)
    folder = tmp_path_factory.mktemp("bake")
    path = export_onnx(model, folder / "model.onnx", ExportConfig(max_batch_size=8, max_seq_length=16), catalog.index())
    return path, catalog, _data(catalog, model.fanout_caps, seed=1), model.fanout_caps


def _data(catalog: Catalog, caps: tuple[int, int], seed: int) -> ConstraintData:
    rng = np.random.default_rng(seed)
    sets = {"in_stock": rng.random(len(catalog)) < 0.6, "fresh": rng.random(len(catalog)) < 0.1}
    return ConstraintData.build(catalog.index(), sets, caps)


def _later_catalog(catalog: Catalog) -> Catalog:
    """Another catalog of the same codebooks: 40 % of the items gone, new items under unused level-1 codes."""
    rng = np.random.default_rng(11)
    keep = rng.random(len(catalog)) > 0.4
    unused = np.setdiff1d(np.arange(catalog.codebook_sizes[0]), catalog.codes[:, 0])[:3]
    new = np.array([(l1, l2, l3) for l1 in unused for l2 in (5, 9) for l3 in (1, 2, 3)], dtype=np.int64)
    codes = np.concatenate([catalog.codes[keep], new])
    ids = np.concatenate([catalog.item_ids[keep], 10_000_000 + np.arange(len(new))])
    return Catalog.from_arrays(ids, codes, catalog.codebook_sizes)


def _rules(data: ConstraintData, rng: np.random.Generator) -> tuple[list[RuleRequest], list[np.ndarray]]:
    """Rows with no rule, exclusions, exclude-history, one set, two sets with exclusions (ids in and out of it)."""
    ids = np.asarray(data.index.item_ids)
    histories = [rng.choice(ids, int(rng.integers(1, 12))) for _ in range(ROWS)]
    rules = [
        RuleRequest(),
        RuleRequest(exclude=rng.choice(ids, 400, replace=False)),
        RuleRequest(exclude_history=True),
        RuleRequest(sets=("fresh",)),
        RuleRequest(sets=("in_stock", "fresh"), exclude=np.r_[rng.choice(ids, 30), -5, 10**12]),
        RuleRequest(exclude_history=True, sets=("in_stock",), exclude=rng.choice(ids, 50)),
    ]
    return rules, histories


def _feeds(data: ConstraintData, seed: int, with_rules: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = random_encoder_batch(data.index, ROWS, 9, rng)
    rules, histories = _rules(data, rng) if with_rules else ([RuleRequest()] * ROWS, [np.zeros(0, np.int64)] * ROWS)
    return {**feed, **pack_rules(rules, histories, data, default_exclude_history=False)}


def _run(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(list(MODEL_OUTPUTS), feed)


def _assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)


def test_a_baked_file_takes_the_encoder_and_rule_inputs_only(world, tmp_path):
    unbaked, _, data, caps = world
    baked = bake_tables(unbaked, tmp_path / "model.onnx", data.tables(), data.fingerprint)
    source, model = onnx.load(str(unbaked)), onnx.load(str(baked))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == [*ENCODER_INPUTS, *RULE_NAMES]
    assert {t.name for t in model.graph.initializer} >= set(TABLE_NAMES) and is_baked(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta == {**{p.key: p.value for p in source.metadata_props}, TABLES_KEY: data.fingerprint}
    assert meta["ugt.fanout_caps"] == f"{caps[0]},{caps[1]}"
    assert list(model.opset_import) == list(source.opset_import) and model.ir_version == source.ir_version
    symbols = {
        d.dim_param for v in (*model.graph.value_info, *model.graph.output) for d in v.type.tensor_type.shape.dim
    }
    assert not {s for s in symbols if any(name in s for name in ("pairs", "items", "sets"))} - {
        "dead_pairs", "removed_items"
    }  # fmt: skip
    assert not tables_file(baked).exists()


@pytest.mark.parametrize("with_rules", [False, True], ids=["no-rules", "rules"])
def test_the_baked_file_answers_as_the_unbaked_one_fed_the_same_tables(world, tmp_path, with_rules):
    unbaked, _, data, _ = world
    baked = bake_tables(unbaked, tmp_path / "model.onnx", data.tables())
    for seed in range(3):
        feed = _feeds(data, seed, with_rules)
        _assert_same(_run(baked, feed), _run(unbaked, {**feed, **data.tables()}))


def test_a_rebake_serves_another_catalog_of_the_same_codebooks(world, tmp_path):
    unbaked, catalog, data, caps = world
    later = _data(_later_catalog(catalog), caps, seed=2)
    first = bake_tables(unbaked, tmp_path / "v1" / "model.onnx", data.tables(), data.fingerprint)
    second = bake_tables(unbaked, tmp_path / "v2" / "model.onnx", later.tables(), later.fingerprint)
    for with_rules in (False, True):
        feed = _feeds(later, 7, with_rules)
        got = _run(second, feed)
        _assert_same(got, _run(unbaked, {**feed, **later.tables()}))
        assert (later.index.item_index_of(got[0]) >= 0).all()  # only items of the new catalog
    new_items = np.asarray(later.index.codes)[-18:]
    assert not (data.index.item_index_of(new_items) >= 0).any()
    assert not np.array_equal(_run(first, _feeds(data, 7, False))[0], _run(second, _feeds(later, 7, False))[0])


def test_big_tables_go_to_an_aligned_external_file_that_the_onnx_checks_accept(world, tmp_path):
    unbaked, _, data, _ = world
    baked = bake_tables(unbaked, tmp_path / "model.onnx", data.tables(), external_threshold=0)
    assert external_files(baked, read_onnx(baked)) == {tables_file(baked).name}
    offsets = [
        int(next(e.value for e in t.external_data if e.key == "offset"))
        for t in onnx.load(str(baked), load_external_data=False).graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    assert len(offsets) == len(TABLE_NAMES) and all(offset % 4096 == 0 for offset in offsets)
    feed = _feeds(data, 3, with_rules=True)
    _assert_same(_run(baked, feed), _run(unbaked, {**feed, **data.tables()}))
    bake_tables(unbaked, baked, data.tables())  # embedded again: the stale external file goes
    assert not tables_file(baked).exists()


def test_external_weights_of_the_source_come_along_to_another_folder(world, tmp_path):
    unbaked, _, data, _ = world
    source = tmp_path / "source" / "model.tables.onnx"
    source.parent.mkdir()
    model = onnx.load(str(unbaked))
    onnx.save_model(model, str(source), save_as_external_data=True, location="weights.bin", size_threshold=256)
    baked = bake_tables(source, tmp_path / "served" / "model.onnx", data.tables())
    assert external_files(baked, read_onnx(baked)) == {"weights.bin"}
    feed = _feeds(data, 4, with_rules=True)
    _assert_same(_run(baked, feed), _run(unbaked, {**feed, **data.tables()}))


def test_tensorrts_static_parser_check_accepts_the_baked_graph(world, tmp_path):
    unbaked, _, data, _ = world
    report = check_tensorrt_compatibility(bake_tables(unbaked, tmp_path / "model.onnx", data.tables()))
    assert report.ok, report.problems
    assert report.op_counts["ScatterElements"] >= 1 and "Loop" not in report.op_counts


def test_wrong_tables_and_models_without_tables_are_refused(world, tmp_path):
    unbaked, _, data, _ = world
    tables = dict(data.tables())
    with pytest.raises(ExportError, match="table_set_items is int64"):
        bake_tables(unbaked, tmp_path / "a.onnx", {**tables, "table_set_items": tables["table_set_items"].astype(int)})
    with pytest.raises(ExportError, match="table_l2_offset is int64 \\[7\\]"):
        bake_tables(unbaked, tmp_path / "a.onnx", {**tables, "table_l2_offset": np.zeros(7, np.int64)})
    short = {**tables, "table_pair_l2": tables["table_pair_l2"][:-1]}
    with pytest.raises(ExportError, match="axis 'pairs'"):
        bake_tables(unbaked, tmp_path / "a.onnx", short)
    with pytest.raises(ExportError, match="missing"):
        bake_tables(unbaked, tmp_path / "a.onnx", {k: v for k, v in tables.items() if k != "table_item_l3"})
    baked = bake_tables(unbaked, tmp_path / "b.onnx", tables)
    with pytest.raises(StepContractError, match="nothing to bake"):
        bake_tables(baked, tmp_path / "c.onnx", tables)
