"""Native model steps of a model that honours the rules (Triton's onnxruntime backend, TensorRT), offline.

The CPU tritonserver here has the Python backend only, so these builds are checked without a server: the
served model.onnx is the baked one and its inputs are exactly the config's, a data-only version bakes again,
and the TensorRT profile, feeds and calibration batches cover the rule inputs (no TensorRT here: shapes only).
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, synthetic_catalog
from ugt_ensemble.catalog.files import save_catalog_csv
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig, target_server_settings
from ugt_ensemble.errors import ExportError, RequestError
from ugt_ensemble.export.bake import TABLES_KEY, UNBAKED_ONNX_FILE
from ugt_ensemble.export.tensorrt_plan import ProfileShapes, engine_feed, int8_calibration
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.model_io import config_io_errors, native_model_errors
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.repository.rules import check_repository, parse_config
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES, TABLE_NAMES
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import check_list_length, pack_rules
from ugt_ensemble.serving.deploy import add_version
from ugt_ensemble.serving.versions import VersionedRepository

ITEMS, SEED = 1500, 4
_ONNX_TYPES = {
    onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.BOOL: "TYPE_BOOL"
}  # fmt: skip


@pytest.fixture(scope="module")
def native(tmp_path_factory, tiny_config):
    """A repository for Triton's onnxruntime backend (NVIDIA's container) serving the reference UGT."""
    folder = tmp_path_factory.mktemp("native")
    catalog = synthetic_catalog(ITEMS, seed=SEED)
    save_catalog_csv(catalog, folder / "a.csv")
    export, triton = target_server_settings("ngc", "onnxruntime-backend")
    export = ExportConfig(**{**export, "max_seq_length": 64, "validation_shapes": ((1, 1), (2, 16))},
                          catalog_path=folder / "a.csv")  # fmt: skip
    config = BuildConfig(output_dir=folder / "repo", model_config=tiny_config, seed=SEED, export=export, triton=triton)
    build_repository(config)
    return folder, catalog, config


def _later(catalog: Catalog) -> Catalog:
    """Another catalog of the same codebooks: a third of the items gone, new items under unused level-1 codes."""
    rng = np.random.default_rng(5)
    keep = rng.random(len(catalog)) > 0.33
    unused = np.setdiff1d(np.arange(catalog.codebook_sizes[0]), catalog.codes[:, 0])[:4]
    new = np.array([(l1, l2, l3) for l1 in unused for l2 in (3, 8) for l3 in (0, 7)], dtype=np.int64)
    ids = np.concatenate([catalog.item_ids[keep], 10**9 + np.arange(len(new))])
    return Catalog.from_arrays(ids, np.concatenate([catalog.codes[keep], new]), catalog.codebook_sizes)


def _dims(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)


def test_the_served_model_is_the_baked_one_with_exactly_the_configs_inputs(native):
    folder, _, _ = native
    step, root = folder / "repo" / "ugt_trt" / "1", folder / "repo"
    config = parse_config((root / "ugt_trt" / "config.pbtxt").read_text(), "ugt_trt")
    graph = onnx.load(str(step / "model.onnx"), load_external_data=False).graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    assert config.platform == "onnxruntime_onnx"
    assert [i.name for i in inputs] == [t.name for t in config.input] == [*ENCODER_INPUTS, *RULE_NAMES]
    for value, tensor in zip(inputs, config.input):
        assert _ONNX_TYPES[value.type.tensor_type.elem_type] == mc.DataType.Name(tensor.data_type)
        assert _dims(value) == (-1, *tensor.dims), tensor.name
    for value, tensor in zip(graph.output, config.output):
        assert value.name == tensor.name and _dims(value) == (-1, *tensor.dims)
    assert TABLES_KEY in {p.key for p in onnx.load(str(step / "model.onnx"), load_external_data=False).metadata_props}
    unbaked = onnx.load(str(step / UNBAKED_ONNX_FILE), load_external_data=False)
    assert [i.name for i in unbaked.graph.input][-len(TABLE_NAMES) :] == list(TABLE_NAMES)
    warmup = {key for sample in config.model_warmup for key in sample.inputs}
    assert warmup == {*ENCODER_INPUTS, *RULE_NAMES}
    assert native_model_errors(root, {"ugt_trt": config}) == []
    result = validate_deployment(root)
    assert result["valid"], result["errors"]
    assert any("onnxruntime_onnx" in r for r in result["info"]["loadable_on"]["cpu-wheel"])


def test_the_unbaked_file_in_a_native_config_is_caught(native):
    folder, _, _ = native
    step = folder / "repo" / "ugt_trt" / "1"
    config = parse_config((folder / "repo" / "ugt_trt" / "config.pbtxt").read_text(), "ugt_trt")
    errors = config_io_errors(config, step / UNBAKED_ONNX_FILE, "ugt_trt/1")
    assert len(errors) == 1 and "takes input(s) ['table_" in errors[0] and "does not list" in errors[0]
    config.input[7].dims[0] = 1000  # rule_l1_valid [V1]
    config.input[0].data_type = config.input[5].data_type
    errors = config_io_errors(config, step / "model.onnx", "ugt_trt/1")
    assert any("'encoder_l1_ids': config.pbtxt says TYPE_FP32, the model TYPE_INT64" in e for e in errors), errors
    assert any("'rule_l1_valid': config.pbtxt dims [1000]" in e for e in errors), errors


def test_a_new_catalog_is_a_data_only_version_baked_again(native):
    folder, catalog, config = native
    later = _later(catalog)
    save_catalog_csv(later, folder / "b.csv")
    repo = folder / "repo"
    assert add_version(repo, {}, catalog_path=folder / "b.csv") == 2
    v1, v2 = repo / "ugt_trt" / "1", repo / "ugt_trt" / "2"
    assert (v1 / UNBAKED_ONNX_FILE).read_bytes() == (v2 / UNBAKED_ONNX_FILE).read_bytes()  # copied: no export
    assert os.stat(v1 / UNBAKED_ONNX_FILE).st_ino != os.stat(v2 / UNBAKED_ONNX_FILE).st_ino  # the served file untouched
    assert VersionedRepository(repo).manifest["versions"]["2"]["catalog"]["data_only"] is True
    data = ConstraintData.load(repo / "preprocess" / "2" / "catalog")
    meta = {p.key: p.value for p in onnx.load(str(v2 / "model.onnx"), load_external_data=False).metadata_props}
    first = ConstraintData.load(repo / "preprocess" / "1" / "catalog")
    assert meta[TABLES_KEY] == data.fingerprint != first.fingerprint
    rng = np.random.default_rng(2)
    ids = np.asarray(data.index.item_ids)
    rules = [RuleRequest(), RuleRequest(exclude=ids[:300]), RuleRequest(exclude_history=True)]
    feed = random_encoder_batch(data.index, 3, 12, rng)
    feed.update(pack_rules(rules, [rng.choice(ids, 10)] * 3, data, default_exclude_history=False))
    baked = ort.InferenceSession(str(v2 / "model.onnx")).run(list(MODEL_OUTPUTS), feed)
    fed = ort.InferenceSession(str(v2 / UNBAKED_ONNX_FILE)).run(list(MODEL_OUTPUTS), {**feed, **data.tables()})
    np.testing.assert_array_equal(baked[0], fed[0])
    np.testing.assert_allclose(baked[1], fed[1], atol=1e-6)
    assert (data.index.item_index_of(baked[0]) >= 0).all()
    result = validate_deployment(repo)
    assert result["valid"], result["errors"]


def test_the_tensorrt_profile_covers_the_rule_inputs():
    export = ExportConfig(max_batch_size=16, opt_batch_size=8, max_seq_length=256, opt_seq_length=64)
    assert set(ProfileShapes.from_export(export).inputs()) == set(ENCODER_INPUTS)
    shapes = ProfileShapes.from_export(export, rules=True).inputs()
    assert set(shapes) == {*ENCODER_INPUTS, *RULE_NAMES}
    assert shapes["encoder_mask"] == ((1, 1), (8, 64), (16, 256))
    assert shapes["rule_set"] == ((1, 1), (8, 1), (16, 1))
    assert shapes["rule_l1_valid"] == ((1, 1024), (8, 1024), (16, 1024))
    for name in ("rule_dead_pairs", "rule_removed_items"):
        assert shapes[name] == ((1, 1, 2), (8, 1, 2), (16, 2048, 2))
    bounded = ExportConfig(max_rule_list=300, codebook_sizes=(64, 128, 256))
    shapes = ProfileShapes.from_export(bounded, rules=True).inputs()
    assert shapes["rule_removed_items"][2] == (64, 300, 2) and shapes["rule_l1_valid"][2] == (64, 64)


def test_the_profile_follows_the_model_file(native, tmp_path):
    folder, _, config = native
    step = folder / "repo" / "ugt_trt" / "1"
    assert ProfileShapes.for_model(step / "model.onnx", config.export).rule_lists == (1, 1, 2048)
    with pytest.raises(ExportError, match="bake them into the graph first"):
        ProfileShapes.for_model(step / UNBAKED_ONNX_FILE, config.export)


def test_engine_feeds_and_int8_calibration_carry_the_rule_tensors(native):
    folder, _, config = native
    data = ConstraintData.load(folder / "repo" / "preprocess" / "1" / "catalog")
    inputs = [*ENCODER_INPUTS, *RULE_NAMES]
    encoder = random_encoder_batch(data.index, 4, 9, np.random.default_rng(0))
    fed = engine_feed({**encoder, **data.tables()}, inputs, data, "engine")
    assert list(fed) == inputs and fed["rule_l1_valid"].shape == (4, 1024) and fed["rule_dead_pairs"].shape == (4, 1, 2)
    assert list(engine_feed(encoder, ENCODER_INPUTS, None, "engine")) == list(ENCODER_INPUTS)
    with pytest.raises(ExportError, match="rule_set"):
        engine_feed(encoder, inputs, None, "engine")
    int8 = ExportConfig(precision="int8", calibration_batches=2, calibration_batch_size=3, opt_seq_length=16)
    batches = list(int8_calibration(data.index, int8, 0, data))
    assert len(batches) == 2 and all(set(b) == set(inputs) for b in batches)
    assert all(b["rule_removed_items"].shape == (3, 1, 2) and b["rule_set"].flags.writeable for b in batches)


def test_a_tensorrt_steps_config_fits_the_baked_file_and_bounds_the_rule_lists(native, tmp_path):
    folder, catalog, _ = native
    export, triton = target_server_settings("ngc", "tensorrt")
    config = BuildConfig(export=ExportConfig(**{**export, "max_seq_length": 64, "max_rule_list": 500}), triton=triton)
    data = ConstraintData.load(folder / "repo" / "preprocess" / "1" / "catalog")
    write_models(tmp_path, config, data)
    step = tmp_path / "ugt_trt" / "1"
    (step / "model.onnx").write_bytes((folder / "repo" / "ugt_trt" / "1" / "model.onnx").read_bytes())
    (step / "model.plan").write_bytes(b"an engine would be built from model.onnx on a GPU")
    report = check_repository(tmp_path)
    assert report.valid, report.errors
    assert report.configs["ugt_trt"].platform == "tensorrt_plan"
    assert native_model_errors(tmp_path, report.configs) == []
    assert {k for s in report.configs["ugt_trt"].model_warmup for k in s.inputs} == {*ENCODER_INPUTS, *RULE_NAMES}
    assert report.configs["preprocess"].parameters["max_rule_list"].string_value == "500"
    cpu = BuildConfig(export=ExportConfig(precision="fp32"), triton=TritonConfig.cpu())
    parameters = parse_config(render_configs(cpu)["preprocess"], "preprocess").parameters
    assert parameters["max_rule_list"].string_value == "0"  # ONNX Runtime takes lists of any length


def test_requests_removing_more_than_the_bound_are_refused(native):
    folder, _, _ = native
    data = ConstraintData.load(folder / "repo" / "preprocess" / "1" / "catalog")
    ids = np.asarray(data.index.item_ids)
    history = ids[:40]
    check_list_length(RuleRequest(exclude=ids[:100]), history, data, False, 100)
    check_list_length(RuleRequest(exclude=np.r_[ids[:100], ids[:100], -1, 10**15]), history, data, False, 100)
    with pytest.raises(RequestError, match="removes 101 catalog items.*at most 100"):
        check_list_length(RuleRequest(exclude=ids[:101]), history, data, False, 100)
    with pytest.raises(RequestError, match="removes 120 catalog items"):
        check_list_length(RuleRequest(exclude=ids[30:120]), history, data, True, 100)
    check_list_length(RuleRequest(exclude=ids[30:120], exclude_history=False), history, data, True, 100)
    packed = pack_rules([RuleRequest(exclude=ids[:100])], [history], data, False)
    assert packed["rule_removed_items"].shape[1] <= 100 and packed["rule_dead_pairs"].shape[1] <= 100
