"""The model's source is a typed field of the build manifest (`model`): a deploy that names no model keeps
the served version's model by that field, never by a display label; older manifests are read from the label.

A repository built from a bare ONNX file and deployed with only `--catalog` used to fall back to the seeded
reference UGT (the label starts with the file's path, not "ONNX")."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from recommender import make_recommender

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import Catalog, save_catalog_csv
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.model.provenance import ModelSource
from ugt_ensemble.repository.manifest import read_manifest, write_manifest
from ugt_ensemble.runtime.contract import ONNX_FILE
from ugt_ensemble.serving.deploy import add_version

EXPORT = dict(precision="fp32", max_batch_size=16, max_seq_length=64)


@pytest.mark.parametrize(
    "record, kind, path",
    [
        ({"model": {"kind": "onnx", "path": "/m/x.onnx"}, "model_source": "anything"}, "onnx", "/m/x.onnx"),
        ({"model_source": "/m/x.onnx (ONNX, no PyTorch model)"}, "onnx", "/m/x.onnx"),
        ({"model_source": "ONNX model.onnx"}, "onnx", None),
        ({"model_source": "the given SASRec module"}, "module", None),
        ({"model_source": "model.pt2 (torch.export archive)", "model_file": "model.pt2"}, "pt2", "model.pt2"),
        ({"model_source": "reference UGT (d_model 32, 1 layers, weights from /w/ugt.pt)"}, "checkpoint", "/w/ugt.pt"),
        ({"model_source": "reference UGT (d_model 32, 1 layers, seed 4)", "weights": None}, "reference", None),
        ({}, "reference", None),
    ],
)
def test_the_source_is_read_from_the_typed_field_else_from_an_older_manifests_label(record, kind, path):
    assert ModelSource.from_record(record) == ModelSource(kind, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bare_onnx(tmp_path_factory, catalog):
    """A repository built from a bare ONNX file, the file, and a second catalog (the same codes, other ids)."""
    folder = tmp_path_factory.mktemp("bare_onnx")
    onnx_path = export_onnx(make_recommender(catalog, max_length=64), folder / "mine.onnx", ExportConfig(**EXPORT),
                            catalog.index())  # fmt: skip
    save_catalog_csv(catalog, folder / "items.csv")
    moved = Catalog.from_arrays(catalog.item_ids + 100_000, catalog.codes, catalog.codebook_sizes, "moved ids")
    save_catalog_csv(moved, folder / "new.csv")
    config = BuildConfig(
        output_dir=folder / "repo", onnx_path=onnx_path, triton=TritonConfig.cpu(), target_server="cpu-wheel",
        export=ExportConfig(**EXPORT, catalog_path=folder / "items.csv"),
    )  # fmt: skip
    build_repository(config)
    return config, folder


def test_a_catalog_only_deploy_of_a_bare_onnx_repository_serves_that_onnx_model(bare_onnx):
    config, folder = bare_onnx
    root, step = config.output_dir, config.triton.step_name
    manifest = read_manifest(root)
    assert manifest["model"] == {"kind": "onnx", "path": str(config.onnx_path.absolute())}
    result = subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", "deploy", "--model-repository", str(root), "--catalog",
         str(folder / "new.csv"), "--quiet"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert _sha256(root / step / "2" / ONNX_FILE) == _sha256(config.onnx_path)  # not the seeded reference UGT
    assert read_manifest(root)["versions"]["2"]["model"]["kind"] == "onnx"

    older = read_manifest(root)  # as written before the typed field: only the label says "ONNX"
    older.pop("model")
    for record in older["versions"].values():
        record.pop("model")
    write_manifest(root, older)
    assert add_version(root, {}, folder / "new.csv") == 3
    assert _sha256(root / step / "3" / ONNX_FILE) == _sha256(config.onnx_path)
