"""The seeds' Python API (no server): ServingExporter, validate_deployment, convenience functions."""

import numpy as np
import pytest

import ugt_ensemble
from ugt_ensemble import (
    ExportConfig,
    ServingExporter,
    ServingExporterInterface,
    TritonConfig,
    create_calibration_data_generator,
    create_exporter,
    validate_deployment,
)
from ugt_ensemble.errors import MissingDependencyError


def test_public_names_resolve():
    for name in ugt_ensemble.__all__:
        assert getattr(ugt_ensemble, name) is not None
    with pytest.raises(AttributeError):
        ugt_ensemble.no_such_name  # noqa: B018
    assert issubclass(ServingExporter, ServingExporterInterface)


@pytest.fixture(scope="module")
def exporter_and_onnx(tmp_path_factory, tiny_model):
    exporter = create_exporter(export_config=ExportConfig(max_batch_size=8, max_seq_length=64), show_progress=False)
    path = exporter.export_onnx(tiny_model, tmp_path_factory.mktemp("api") / "ugt_trt" / "1" / "model.onnx")
    return exporter, path


def test_export_reconstructs_the_catalog_from_the_model(exporter_and_onnx, catalog):
    exporter, path = exporter_and_onnx
    assert path.is_file()
    assert len(exporter.catalog) == len(catalog)
    assert set(map(tuple, exporter.catalog.codes.tolist())) == set(map(tuple, catalog.codes.tolist()))


def test_generate_triton_config_and_validate_deployment(exporter_and_onnx):
    exporter, onnx_path = exporter_and_onnx
    repository = onnx_path.parents[2]
    files = exporter.generate_triton_config(repository, TritonConfig(max_batch_size=8))
    assert any(f.name == "config.pbtxt" for f in files)
    result = validate_deployment(repository, "ugt_recommend")
    assert result["valid"], result["errors"]
    assert result["info"]["ensembles"]["ugt_recommend"] == ["preprocess", "ugt_trt", "postprocess"]


def test_validate_deployment_reports_what_is_missing(exporter_and_onnx, tmp_path):
    import shutil

    exporter, onnx_path = exporter_and_onnx
    repository = tmp_path / "copy"
    shutil.copytree(onnx_path.parents[2], repository)
    (repository / "preprocess" / "1" / "triton_io.py").unlink()
    (repository / "postprocess" / "1" / "catalog.npz").write_bytes(b"not a catalog")
    result = validate_deployment(repository, "reco")
    assert not result["valid"]
    text = "\n".join(result["errors"])
    assert "imports triton_io, which is missing" in text
    assert "postprocess/1/catalog.npz: cannot load" in text
    assert "no model named 'reco'" in text


def test_optimize_tensorrt_without_tensorrt_says_so(exporter_and_onnx, tmp_path):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    exporter, onnx_path = exporter_and_onnx
    with pytest.raises(MissingDependencyError, match="TensorRT"):
        exporter.optimize_tensorrt(onnx_path, tmp_path / "model.plan", ExportConfig(engine="tensorrt"))


def test_calibration_generator(catalog):
    batches = list(create_calibration_data_generator(catalog, batch_size=2, seq_length=8, num_batches=2))
    assert len(batches) == 2 and batches[1]["encoder_positions"].shape == (2, 8)
    assert np.all(batches[0]["encoder_positions"][0] == np.arange(8))
