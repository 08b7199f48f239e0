"""The seeds' Python API (002 §4.3, §5.2, §5.4, §5.5) as written, with only the import path changed, and
CPU variants where TensorRT is needed (no server here; §5.1 and §5.3 serve: tests/integration)."""

import pytest

import ugt_ensemble
from ugt_ensemble import (
    ExportConfig,
    ServingExporter,
    ServingExporterInterface,
    TensorRTOptimizer,
    TritonConfig,
    create_calibration_data_generator,
    create_exporter,
    export_to_onnx,
    generate_triton_config,
)
from ugt_ensemble.errors import MissingDependencyError

#: The CPU variant of the seeds' configs: fp32 and ONNX Runtime in the Python backend.
CPU = dict(precision="fp32", max_seq_length=128)


def test_public_names_resolve():
    for name in ugt_ensemble.__all__:
        assert getattr(ugt_ensemble, name) is not None
    with pytest.raises(AttributeError):
        ugt_ensemble.no_such_name  # noqa: B018
    assert issubclass(ServingExporter, ServingExporterInterface)


def test_section_4_3_convenience_functions(tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(tmp_path)
    exporter = create_exporter(model_name="my_model", precision="fp16", max_batch_size=64, max_seq_length=1024)
    assert exporter.export_config.model_name == "my_model" and exporter.triton_config.platform == "tensorrt_plan"
    config = ExportConfig(**CPU)
    onnx_path = export_to_onnx(tiny_model, "model.onnx", config)
    assert (tmp_path / "model.onnx").is_file() and onnx_path == "model.onnx"
    config_str = generate_triton_config("my_model", config)
    assert 'name: "my_model"' in config_str and 'platform: "ensemble"' in config_str
    with pytest.raises(MissingDependencyError, match="on CPU use TritonConfig.cpu"):
        ugt_ensemble.build_trt_engine("model.onnx", "model.plan", config)


def test_section_5_1_as_written_fails_in_one_line_naming_the_cpu_alternative(tmp_path, tiny_model):
    config = ExportConfig(model_name="ugt_recommend", precision="fp16", max_batch_size=64, max_seq_length=1024)
    exporter = ServingExporter(config)
    with pytest.raises(MissingDependencyError) as info:
        exporter.deploy_full_pipeline(tiny_model, tmp_path / "model_repository")
    assert "TritonConfig.cpu()" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "model_repository").exists()


def test_section_5_2_step_by_step_cpu_variant(tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(tmp_path)
    export_config = ExportConfig(model_name="ugt_recommend", **CPU)
    triton_config = TritonConfig.cpu(instance_count=2)
    exporter = ServingExporter(export_config, triton_config, show_progress=False)
    onnx_path = exporter.export_onnx(tiny_model, "models/ugt.onnx")
    assert onnx_path == "models/ugt.onnx"
    with pytest.raises(MissingDependencyError, match="TensorRT"):
        exporter.optimize_tensorrt(onnx_path, "models/ugt.plan")  # the seeds' step 2 needs TensorRT
    config_path = exporter.generate_triton_config("./model_repository")
    assert config_path.endswith("model_repository/ugt_recommend/config.pbtxt")
    report = exporter.validate_deployment("./model_repository", "ugt_recommend")
    assert report["valid"], report["errors"]
    assert report["info"]["models"]["ugt_trt"]["backend"] == "python"


def test_section_5_4_int8_calibration_data_and_optimizer(tmp_path):
    calibration_gen = create_calibration_data_generator(
        num_samples=100, batch_size=32, seq_length=512, codebook_sizes=(1024, 4096, 16384)
    )
    batches = list(calibration_gen)
    assert len(batches) == 4 and all(b["encoder_l1_ids"].shape == (32, 512) for b in batches)
    assert all(b["encoder_l3_ids"].max() < 16384 for b in batches)
    config = ExportConfig(model_name="ugt_recommend", precision="int8")
    optimizer = TensorRTOptimizer(config)
    (tmp_path / "ugt.onnx").write_bytes(b"not used: TensorRT is missing here")
    with pytest.raises(MissingDependencyError, match="needs TensorRT 10"):
        optimizer.optimize(str(tmp_path / "ugt.onnx"), str(tmp_path / "ugt_int8.plan"), calibration_data=batches)
    with pytest.raises(FileNotFoundError):
        optimizer.optimize(str(tmp_path / "missing.onnx"), str(tmp_path / "x.plan"))


def test_section_5_5_validation_reports_problems(tmp_path):
    exporter = ServingExporter()
    result = exporter.validate_deployment(tmp_path, "ugt_recommend")
    assert not result["valid"]
    assert any("no model named 'ugt_recommend'" in e for e in result["errors"])
