"""ONNX export and its validation against PyTorch (no server; a few seconds with the tiny model)."""

import onnx
import pytest

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.validate import validate_onnx
from ugt_ensemble.model.ugt import build_model
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS, RULE_NAMES, TABLE_NAMES

SMALL_RANGE = ExportConfig(max_batch_size=16, max_seq_length=128, precision="fp32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model, index):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(tiny_model, path, SMALL_RANGE, index)


def test_graph_has_the_contract_names_and_dynamic_axes(exported):
    graph = onnx.load(str(exported)).graph
    assert [i.name for i in graph.input] == [*ENCODER_INPUTS, *RULE_NAMES, *TABLE_NAMES]  # rules in the search
    assert [o.name for o in graph.output] == list(MODEL_OUTPUTS)
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input[:6]]
    assert all(isinstance(b, str) and isinstance(t, str) for b, t in dims)
    out = [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    assert out[1:] == [50, 3]
    assert not {"Loop", "Scan", "If"} & {n.op_type for n in graph.node}


def test_exported_model_matches_pytorch(exported, tiny_model, index):
    checks = validate_onnx(tiny_model, exported, index, SMALL_RANGE)
    assert [(c.batch, c.length) for c in checks] == list(SMALL_RANGE.validation_shapes)
    assert all(c.ok and c.max_score_diff < 1e-4 for c in checks)


def test_a_mismatch_fails_loudly_with_every_shape(exported, tiny_config, catalog, index):
    other = build_model(tiny_config, catalog.prefix_tables(), seed=99)
    with pytest.raises(ExportError, match=r"differs from the PyTorch model on \d+ of \d+ shapes") as info:
        validate_onnx(other, exported, index, SMALL_RANGE)
    assert "(batch 1, seq 1)" in str(info.value)
