"""TensorRT without TensorRT: the static parser check, the build plan, and clear errors where it is missing.

The engine build itself needs TensorRT and a GPU: see tests/gpu/test_tensorrt_engine.py (skipped here).
"""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import InputFileError, MissingDependencyError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.tensorrt_build import require_tensorrt
from ugt_ensemble.export.tensorrt_check import check_tensorrt_compatibility
from ugt_ensemble.export.tensorrt_plan import (
    PRECISION_FLAGS,
    EngineMetadata,
    ProfileShapes,
    calibration_batches,
    fp32_node_names,
)
from ugt_ensemble.runtime.contract import ENCODER_INPUTS


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model, index):
    path = tmp_path_factory.mktemp("trt") / "model.onnx"
    return export_onnx(tiny_model, path, ExportConfig(max_batch_size=8, max_seq_length=64), index)


def test_our_exported_graph_passes_the_static_check(exported):
    report = check_tensorrt_compatibility(exported)
    assert report.ok, report.problems
    assert report.op_counts["TopK"] == 3 and "Loop" not in report.op_counts
    assert 9 <= report.opset <= 20


def _model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _tensor(name, elem=TensorProto.FLOAT, shape=(2, 4)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _k(value):
    return helper.make_tensor("k", TensorProto.INT64, [1], [value])


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (
            _model(
                [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1, sorted=0)],
                [_tensor("x")],
                [_tensor("v"), _tensor("i", TensorProto.INT64)],
                [_k(2)],
            ),
            "`sorted` must be 1",
        ),
        (
            _model(
                [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)],
                [_tensor("x", shape=(2, 5000))],
                [_tensor("v"), _tensor("i", TensorProto.INT64)],
                [_k(4000)],
            ),
            "K = 4000 must be < 3840",
        ),
        (
            _model(
                [helper.make_node("TopK", ["x", "kk"], ["v", "i"])],
                [_tensor("x"), _tensor("kk", TensorProto.INT64, (1,))],
                [_tensor("v"), _tensor("i", TensorProto.INT64)],
            ),
            "input 1 must be a constant",
        ),
        (
            _model(
                [helper.make_node("MatMul", ["a", "b"], ["c"])],
                [_tensor("a", TensorProto.INT64), _tensor("b", TensorProto.INT64, (4, 2))],
                [_tensor("c", TensorProto.INT64)],
            ),
            "input type INT64 unsupported",
        ),
        (
            _model(
                [helper.make_node("Scan", ["x"], ["y"], num_scan_inputs=1, body=helper.make_graph([], "b", [], []))],
                [_tensor("x")],
                [_tensor("y")],
            ),
            "unroll it into static steps",
        ),
        (
            _model([helper.make_node("Custom", ["x"], ["y"], domain="my.ops")], [_tensor("x")], [_tensor("y")]),
            "needs a TensorRT plugin",
        ),
        (
            _model([helper.make_node("Relu", ["x"], ["y"])], [_tensor("x")], [_tensor("y")], opset=21),
            "opset 21 is outside",
        ),
        (_model([helper.make_node("Unique", ["x"], ["y"])], [_tensor("x")], [_tensor("y")]), "not in onnx-tensorrt"),
    ],
)
def test_graphs_tensorrt_cannot_parse_are_caught(model, problem):
    report = check_tensorrt_compatibility(model)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def test_profile_covers_every_input_with_the_configured_range():
    shapes = ProfileShapes.from_export(ExportConfig())
    assert (shapes.min, shapes.opt, shapes.max) == ((1, 1), (32, 512), (64, 1024))
    assert set(shapes.inputs()) == set(ENCODER_INPUTS)
    small = ProfileShapes.from_export(ExportConfig(max_batch_size=8, max_seq_length=128))
    assert small.opt == (8, 128) and small.max == (8, 128)


def test_precision_flags():
    assert PRECISION_FLAGS["fp32"] == ()
    assert "FP16" in PRECISION_FLAGS["fp16"] and "OBEY_PRECISION_CONSTRAINTS" in PRECISION_FLAGS["fp16"]
    assert {"INT8", "FP16"} <= set(PRECISION_FLAGS["int8"])


def test_the_decoder_is_what_stays_fp32(exported):
    graph = onnx.load(str(exported))
    pinned = fp32_node_names(graph)
    top_k = {n.name for n in graph.graph.node if n.op_type == "TopK"}
    layer_norms = {n.name for n in graph.graph.node if n.op_type == "LayerNormalization"}
    assert top_k <= pinned  # the beam search ranks in fp32
    assert layer_norms - pinned  # the encoder's layers may run in reduced precision
    assert 0 < len(pinned) < len(graph.graph.node)


def test_synthetic_calibration_batches(index):
    batches = list(calibration_batches(index, batch_size=4, seq_length=32, num_batches=3))
    assert len(batches) == 3
    for batch in batches:
        assert set(batch) == set(ENCODER_INPUTS)
        assert batch["encoder_l1_ids"].shape == (4, 32) and batch["encoder_mask"].dtype == np.float32


def test_calibration_batches_from_a_file(tmp_path, index):
    ids = index.item_ids[:40].tolist()
    path = tmp_path / "histories.jsonl"
    path.write_text("\n".join(json.dumps(ids[i : i + 10]) for i in range(0, 40, 5)) + "\n")
    batches = list(calibration_batches(index, batch_size=3, seq_length=16, num_batches=2, histories_file=path))
    assert len(batches) == 2 and batches[0]["encoder_mask"].shape == (3, 16)
    path.write_text("[1, 2]\n[oops]\n")
    with pytest.raises(InputFileError, match="line 2"):
        list(calibration_batches(index, 1, 16, 2, histories_file=path))


def test_metadata_is_written_beside_the_engine(tmp_path):
    engine = tmp_path / "model.plan"
    meta = EngineMetadata("10.9.0", "NVIDIA H100", "fp16", {"min": (1, 1)}, 4096, 120, "ab" * 32, 12.5, None)
    written = json.loads(meta.write(engine).read_text())
    assert written["precision"] == "fp16" and written["gpu"] == "NVIDIA H100"
    assert (tmp_path / "model.plan.json").is_file()


def test_missing_tensorrt_is_one_clear_line():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="needs TensorRT 10") as info:
            require_tensorrt()
        assert "\n" not in str(info.value)
    else:
        pytest.skip("tensorrt is installed here")
