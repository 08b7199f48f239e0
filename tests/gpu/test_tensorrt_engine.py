"""A real TensorRT engine build, run and validation. Needs TensorRT 10 and a CUDA GPU; skipped elsewhere.

NOT RUN for the releases so far: no machine available to this project has TensorRT (README).
"""

import pytest

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.export.onnx_export import export_onnx

trt = pytest.importorskip("tensorrt", reason="needs TensorRT")
torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_and_matches_pytorch(tmp_path, tiny_model, index, precision):
    from ugt_ensemble.export.tensorrt_build import build_engine
    from ugt_ensemble.export.tensorrt_run import TensorRTRunner
    from ugt_ensemble.export.validate import validate_runner

    config = ExportConfig(
        engine="tensorrt",
        precision=precision,
        max_batch_size=8,
        max_seq_length=64,
        timing_cache=tmp_path / "timing.cache",
    )
    onnx_path = export_onnx(tiny_model, tmp_path / "model.onnx", config, index)
    metadata = build_engine(onnx_path, tmp_path / "model.plan", config)
    assert metadata.precision == precision and (tmp_path / "model.plan.json").is_file()
    assert (tmp_path / "timing.cache").is_file()
    checks = validate_runner(
        tiny_model,
        TensorRTRunner(tmp_path / "model.plan"),
        "engine",
        index,
        config.validation_shapes,
        config.engine_atol,
    )
    assert all(c.ok for c in checks)
