"""One rule picks the catalog for `build` and the Python API alike (`choose_catalog`), `ONNXExporter.export`
runs the build's checks, and one reader gives the model names a manifest records.

The API used to fall back to a synthetic catalog for a module without catalog tables, where `build` refused
it; a served model of one's own then answered with codes of an invented catalog.
"""

import pytest
from step_models import RepeatingCodes

from ugt_ensemble.api import ONNXExporter
from ugt_ensemble.catalog import save_catalog_csv
from ugt_ensemble.config import ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.model.step import choose_catalog
from ugt_ensemble.repository.manifest import ModelNames, model_names

EXPORT = dict(precision="fp32", max_batch_size=8, max_seq_length=32, validation_shapes=((1, 1), (3, 17)))


def test_one_rule_chooses_the_catalog(tmp_path, catalog, tiny_model):
    save_catalog_csv(catalog, tmp_path / "items.csv")
    named = ExportConfig(catalog_path=tmp_path / "items.csv")
    assert choose_catalog(named, RepeatingCodes(catalog.codes)).fingerprint() == catalog.fingerprint()
    own = choose_catalog(ExportConfig(), tiny_model)  # its tables' codes, item ids 0..N-1
    assert own.item_ids.tolist() == list(range(len(catalog)))
    assert {*map(tuple, own.codes)} == {*map(tuple, catalog.codes)}
    with pytest.raises(ConfigError, match="RepeatingCodes has no catalog tables.*catalog_path"):
        choose_catalog(ExportConfig(), RepeatingCodes(catalog.codes))
    with pytest.raises(ConfigError, match="needs the catalog its codes refer to: --catalog FILE"):
        choose_catalog(ExportConfig(), model_file=True)
    assert len(choose_catalog(ExportConfig(), synthetic_items=300, seed=2)) == 300  # the reference UGT's


def test_the_api_export_follows_the_rule_and_runs_the_build_checks(tmp_path, catalog):
    model = RepeatingCodes(catalog.codes)
    exporter = ONNXExporter(ExportConfig(**EXPORT), TritonConfig.cpu())
    with pytest.raises(ConfigError, match="has no catalog tables"):
        exporter.export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    save_catalog_csv(catalog, tmp_path / "items.csv")
    exporter = ONNXExporter(ExportConfig(**EXPORT, catalog_path=tmp_path / "items.csv"), TritonConfig.cpu())
    assert exporter.export(model, tmp_path / "m.onnx") == str(tmp_path / "m.onnx")
    assert [(c.batch, c.length) for c in exporter.validation] == [(1, 1), (3, 17)]


def test_one_reader_gives_the_names_a_manifest_records():
    triton = {"preprocess_name": "pre", "step_name": "step", "postprocess_name": "post", "naive_peer": False}
    names = model_names({"ensemble": "rec", "triton": triton})
    assert names == ModelNames("rec", "pre", "step", "post") and names.steps == ("pre", "step", "post")
    with pytest.raises(KeyError, match="step_name"):
        model_names({"ensemble": "rec", "triton": {"preprocess_name": "pre"}})
    with pytest.raises(TypeError):
        model_names(["not", "a", "manifest"])
