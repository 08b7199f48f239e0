"""A TensorRT engine of a rules-aware model step, built from its baked ONNX file (`export.bake`): it must answer as
ONNX Runtime on the same baked file, without rules, with rules, and with rule lists at the profile's maximum.
Needs TensorRT 10 and a CUDA GPU; skipped elsewhere.

NOT RUN YET: no machine available to this project so far has had TensorRT and a GPU (README).
"""

import numpy as np
import pytest

from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.config import ExportConfig
from ugt_ensemble.export.bake import bake_tables
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.validate import onnx_runner
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.ugt import build_model
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.rule_request import RuleRequest
from ugt_ensemble.runtime.rules import pack_rules

trt = pytest.importorskip("tensorrt", reason="needs TensorRT")
torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_a_baked_engine_answers_as_onnx_runtime_with_and_without_rules(tmp_path, tiny_config):
    from ugt_ensemble.export.tensorrt_build import build_engine
    from ugt_ensemble.export.tensorrt_run import TensorRTRunner

    catalog = synthetic_catalog(3000, seed=5)
    model = build_model(tiny_config, catalog.prefix_tables(), seed=1)
    config = ExportConfig(precision="fp32", max_batch_size=8, max_seq_length=64, max_rule_list=1200, timing_cache=None)
    index = catalog.index()
    unbaked = export_onnx(model, tmp_path / "model.tables.onnx", config, index)
    rng = np.random.default_rng(0)
    data = ConstraintData.build(index, {"half": rng.random(len(catalog)) < 0.5}, model.fanout_caps)
    baked = bake_tables(unbaked, tmp_path / "model.onnx", data.tables(), data.fingerprint)
    build_engine(baked, tmp_path / "model.plan", config)
    engine, reference = TensorRTRunner(tmp_path / "model.plan", data), onnx_runner(baked, data=data)
    ids = np.asarray(index.item_ids)
    rules = [
        RuleRequest(),
        RuleRequest(exclude=ids[:1000]),
        RuleRequest(sets=("half",), exclude=ids[1000:1100]),
        RuleRequest(exclude_history=True, exclude=ids[2000:2150]),
    ]
    feed = random_encoder_batch(index, len(rules), 40, rng)
    histories = [rng.choice(ids, 40) for _ in rules]
    for batch in (dict(feed), {**feed, **pack_rules(rules, histories, data, default_exclude_history=False)}):
        want, got = reference(batch), engine(batch)
        assert not ranked_mismatches(want[0], want[1], got[0], got[1], config.engine_atol)
