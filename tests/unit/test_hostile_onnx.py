"""Hostile ONNX files for `build --onnx` and `deploy --onnx`: one line naming the file and the reason.

External data at an absolute or `../` path, a declared length past the file, opsets 7 and 99, and files
that are not ONNX used to end in ONNX Runtime's traceback; a model with legitimate external data is
built with its data beside it.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from recommender import make_recommender

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import save_catalog_csv
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ExportError, InputFileError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.onnx_file import copy_onnx, read_onnx
from ugt_ensemble.export.validate import catalog_data_for, onnx_runner
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.serving.deploy import add_version

RANGE = ExportConfig(precision="fp32", max_batch_size=16, max_seq_length=64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, catalog, index) -> Path:
    return export_onnx(make_recommender(catalog, max_length=64), tmp_path_factory.mktemp("x") / "m.onnx", RANGE, index)


@pytest.fixture(scope="module")
def items_csv(tmp_path_factory, catalog) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "items.csv"
    save_catalog_csv(catalog, path)
    return path


def with_external(exported: Path, folder: Path, location: str, length: int | None = None) -> Path:
    """`exported` saved in `folder` with its largest initializer's data in `location` (written to
    folder/weights.bin when `location` is that), declaring `length` bytes if given."""
    model = onnx.load(str(exported))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    data = tensor.raw_data
    if location == "weights.bin":
        (folder / "weights.bin").write_bytes(data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0", "length": str(len(data) if length is None else length)}
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    path = folder / "model.onnx"
    onnx.save(model, str(path))
    return path


def with_opset(exported: Path, folder: Path, opset: int) -> Path:
    model = onnx.load(str(exported))
    next(o for o in model.opset_import if o.domain in ("", "ai.onnx")).version = opset
    onnx.save(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


def hostile(kind: str, exported: Path, folder: Path) -> Path:
    """One hostile ONNX file in `folder` (with a secret file outside it for the paths to point at)."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder.parent / "secret.bin"
    secret.write_bytes(bytes(1 << 20))
    if kind == "absolute":
        return with_external(exported, folder, str(secret))
    if kind == "parent":
        return with_external(exported, folder, "../secret.bin")
    if kind == "length":
        return with_external(exported, folder, "weights.bin", length=3 << 30)
    if kind == "link":
        (folder / "data.bin").symlink_to(secret)
        return with_external(exported, folder, "data.bin")
    if kind == "inner_link":  # a symbolic link inside the folder, to a file inside it
        path = with_external(exported, folder, "weights.bin")
        os.replace(folder / "weights.bin", folder / "real.bin")
        (folder / "weights.bin").symlink_to(folder / "real.bin")
        return path
    if kind == "python":
        return with_external(exported, folder, "model.py")
    if kind in ("opset7", "opset99"):
        return with_opset(exported, folder, int(kind[5:]))
    (folder / "model.onnx").write_bytes(b"#!/bin/sh\necho this is no model\n" * 10)
    return folder / "model.onnx"


REASONS = {
    "absolute": r"tensor \S+ keeps its data at '/.*secret.bin'; external data must be a file beside the model",
    "parent": r"tensor \S+ keeps its data at '../secret.bin'; external data must be a file beside the model",
    "length": r"tensor \S+ declares 3221225472 bytes at offset 0 of weights.bin, which holds \d+ bytes; refused",
    "link": r"tensor \S+ keeps its data in 'data.bin', which is not a file in the model's folder",
    "inner_link": r"tensor \S+ keeps its data in 'weights.bin', which goes through a symbolic link; .*; refused$",
    "python": r"tensor \S+ keeps its data in 'model.py', a name a model folder runs or configures with",
    "opset7": r"opset 7; the model step is served with ONNX opsets 13-21",
    "opset99": r"opset 99; the model step is served with ONNX opsets 13-21",
    "not_onnx": r"not an ONNX model \(",
}


@pytest.mark.parametrize("kind", REASONS)
def test_each_hostile_file_is_refused_in_one_line_before_anything_reads_its_data(tmp_path, exported, kind):
    path = hostile(kind, exported, tmp_path / "model")
    with pytest.raises(InputFileError, match=f"^ONNX model {path}: {REASONS[kind]}") as refused:
        read_onnx(path)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("kind", ["absolute", "parent", "length", "opset7", "opset99", "not_onnx"])
def test_build_onnx_prints_one_line_and_no_traceback(tmp_path, exported, items_csv, kind):
    path = hostile(kind, exported, tmp_path / "model")
    errors = cli_errors(tmp_path, "build", "--onnx", str(path), "--catalog", str(items_csv), "--output-dir", "repo",
                        "--target-server", "cpu-wheel")  # fmt: skip
    assert len(errors) == 1 and errors[0].startswith(f"error: ONNX model {path}: "), errors
    assert not (tmp_path / "repo").exists()


def test_onnx_runtime_errors_are_one_line(tmp_path, exported, index):
    model = onnx.load(str(exported))
    model.graph.node[len(model.graph.node) // 2].op_type = "NoSuchOperator"
    onnx.save(model, str(tmp_path / "unknown.onnx"))
    with pytest.raises(ExportError, match="ONNX Runtime cannot load it") as refused:
        onnx_runner(tmp_path / "unknown.onnx")
    assert "\n" not in str(refused.value)
    run = onnx_runner(exported, data=catalog_data_for(exported, index))
    feed = random_encoder_batch(index, 2, 8, np.random.default_rng(0))
    with pytest.raises(ExportError, match="ONNX Runtime fails to run it"):
        run({**feed, "encoder_mask": feed["encoder_mask"].astype(np.float64)})


def test_legitimate_external_data_is_built_beside_the_model_and_deploy_refuses_a_hostile_file(
    tmp_path, exported, items_csv, index
):
    (tmp_path / "model").mkdir()
    path = with_external(exported, tmp_path / "model", "weights.bin")
    copied = copy_onnx(path, tmp_path / "copy" / "model.onnx")
    assert (tmp_path / "copy" / "weights.bin").read_bytes() == (tmp_path / "model" / "weights.bin").read_bytes()
    feed = random_encoder_batch(index, 3, 20, np.random.default_rng(1))
    data = catalog_data_for(exported, index)
    assert np.array_equal(onnx_runner(copied, data=data)(feed)[0], onnx_runner(exported, data=data)(feed)[0])
    config = BuildConfig(
        output_dir=tmp_path / "repo", onnx_path=path, export=ExportConfig(precision="fp32", catalog_path=items_csv,
        max_batch_size=16, max_seq_length=64), triton=TritonConfig.cpu(), target_server="cpu-wheel",
    )  # fmt: skip
    served = build_repository(config).prepared.folder
    assert (served / "weights.bin").is_file() and (served / "model.onnx").is_file()
    bad = hostile("parent", exported, tmp_path / "bad")
    errors = cli_errors(tmp_path, "deploy", "--model-repository", str(tmp_path / "repo"), "--onnx", str(bad))
    assert len(errors) == 1 and errors[0].startswith(f"error: ONNX model {bad}: tensor "), errors
    assert "keeps its data at '../secret.bin'" in errors[0], errors
    assert sorted(p.name for p in (tmp_path / "repo" / config.triton.step_name).iterdir() if p.is_dir()) == ["1"]
    linked = hard_linked(exported, tmp_path / "linked", tmp_path / "operator.key")
    errors = cli_errors(tmp_path, "deploy", "--model-repository", str(tmp_path / "repo"), "--onnx", str(linked))
    assert len(errors) == 1 and "its external data 'weights.bin' is a file with 2 hard links" in errors[0], errors
    os.link(served / "weights.bin", tmp_path / "shared.bin")  # as a data version shares the served model's files
    assert add_version(tmp_path / "repo", {"onnx_path": served / "model.onnx"}) == 2  # the repository's own links


def cli_errors(cwd: Path, *args: str) -> list[str]:
    """The `error:` lines of `python -m ugt_ensemble args` (which must fail without a traceback)."""
    result = subprocess.run([sys.executable, "-m", "ugt_ensemble", *args], capture_output=True, text=True, cwd=cwd,
                            timeout=300)  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def hard_linked(exported: Path, folder: Path, key: Path) -> Path:
    """`exported` in `folder` whose external data file weights.bin is a hard link to `key`, a file outside it
    (an operator key, say) holding as many bytes as the tensor declares."""
    folder.mkdir(parents=True)
    path = with_external(exported, folder, "weights.bin")
    os.replace(folder / "weights.bin", key)
    os.link(key, folder / "weights.bin")
    return path


def test_external_data_hard_linked_to_a_file_outside_the_folder_is_refused_and_never_copied(
    tmp_path, exported, items_csv
):
    key = tmp_path / "operator.key"
    path = hard_linked(exported, tmp_path / "model", key)
    refusal = f"ONNX model {path}: its external data 'weights.bin' is a file with 2 hard links"
    with pytest.raises(InputFileError, match=f"^{refusal} .*copy it, then build again$"):
        copy_onnx(path, tmp_path / "copy" / "model.onnx")
    assert not (tmp_path / "copy" / "weights.bin").exists()
    errors = cli_errors(tmp_path, "build", "--onnx", str(path), "--catalog", str(items_csv), "--output-dir", "repo",
                        "--target-server", "cpu-wheel")  # fmt: skip
    assert len(errors) == 1 and errors[0].startswith(f"error: {refusal}"), errors
    assert not (tmp_path / "repo").exists()
