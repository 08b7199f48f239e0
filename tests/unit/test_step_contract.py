"""A model the package has never seen: the step contract, the ways in (.pt2, ONNX), the catalog-validity
probe, and the constrained decoder as a building block for a non-UGT encoder."""

import json
import zipfile

import numpy as np
import onnx
import pytest
import torch
from recommender import make_recommender
from step_models import RepeatingCodes

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError, InputFileError, StepContractError
from ugt_ensemble.export.onnx_contract import check_onnx_signature
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.probe import probe_catalog_validity, require_validity
from ugt_ensemble.export.tensorrt_check import check_tensorrt_compatibility
from ugt_ensemble.export.validate import catalog_data_for, onnx_runner, validate_onnx
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.contract import check_forward_signature, check_outputs, torch_runner
from ugt_ensemble.model.rule_program import RuleProgramStep
from ugt_ensemble.model.sources import check_program_signature, load_step_archive, program_fanout_caps, save_step_model
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, PAD_ITEM_ID
from ugt_ensemble.runtime.packing import PackingConfig

RANGE = ExportConfig(precision="fp32", max_batch_size=16, max_seq_length=64)


@pytest.fixture(scope="module")
def sasrec(catalog):
    return make_recommender(catalog, max_length=64)


@pytest.fixture(scope="module")
def sasrec_onnx(tmp_path_factory, sasrec, index):
    return export_onnx(sasrec, tmp_path_factory.mktemp("sasrec") / "model.onnx", RANGE, index)


def test_the_constrained_decoder_returns_only_distinct_catalog_items_for_a_non_ugt_encoder(sasrec, index, rng):
    feed = random_encoder_batch(index, 6, 40, rng)
    codes, scores = torch_runner(sasrec, "sasrec")(feed)
    check_outputs([codes, scores], 6, 50, "sasrec")
    items = index.items_of(codes)
    assert (items != PAD_ITEM_ID).all() and all(len(set(row)) == 50 for row in items.tolist())
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_its_export_is_tensorrt_parsable_and_equals_pytorch(sasrec, sasrec_onnx, index):
    assert check_tensorrt_compatibility(sasrec_onnx).ok
    checks = validate_onnx(sasrec, sasrec_onnx, index, RANGE)
    assert all(c.ok for c in checks)
    assert check_onnx_signature(sasrec_onnx, 50).num_recommendations == 50


def test_a_pt2_archive_round_trips_and_its_axes_are_checked(tmp_path, sasrec, index):
    path = save_step_model(sasrec, tmp_path / "model.pt2", index, max_batch_size=16, max_seq_length=64)
    program = load_step_archive(path)
    check_program_signature(program, "model.pt2", (1, 16), (1, 64))
    with pytest.raises(StepContractError, match="covers 1-16, and the build asks for 1-64"):
        check_program_signature(program, "model.pt2", (1, 64), (1, 64))
    feed = random_encoder_batch(index, 2, 8, np.random.default_rng(0))
    eager = RuleProgramStep(program.module(), ConstraintData.build(index, None, program_fanout_caps(program)))
    assert np.array_equal(torch_runner(eager, "pt2")(feed)[0], torch_runner(sasrec, "eager")(feed)[0])
    args = tuple(torch.from_numpy(feed[n]) for n in ENCODER_INPUTS)
    static = torch.export.export(sasrec, args)
    with pytest.raises(StepContractError, match="fixed batch axis of 2"):
        check_program_signature(static, "static.pt2", (1, 16), (1, 64))


def test_pickled_modules_and_state_dicts_are_refused_with_the_way_out(tmp_path, sasrec):
    torch.save(sasrec, tmp_path / "pickled.pt")
    with pytest.raises(InputFileError, match="pickled module.*would run its code.*save_step_model"):
        load_step_archive(tmp_path / "pickled.pt")
    torch.save(sasrec.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(InputFileError, match="holds weights, not a model.*--checkpoint"):
        load_step_archive(tmp_path / "weights.pt")


def test_archives_that_would_unpickle_are_refused(tmp_path, sasrec, index):
    good = save_step_model(sasrec, tmp_path / "good.pt2", index, max_batch_size=16, max_seq_length=64)
    with zipfile.ZipFile(good) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config_name = next(n for n in files if n.endswith("_weights_config.json"))
    config = json.loads(files[config_name])
    next(iter(config["config"].values()))["use_pickle"] = True
    for name, patch in ((config_name, json.dumps(config).encode()), ("good/extra/payload.pkl", b"x")):
        bad = tmp_path / f"bad{len(patch)}.pt2"
        with zipfile.ZipFile(bad, "w") as archive:
            for member, data in {**files, name: patch}.items():
                archive.writestr(member, data)
        with pytest.raises(InputFileError, match="refused"):
            load_step_archive(bad)


def test_forward_signatures_and_outputs_are_checked():
    class TwoInputs(torch.nn.Module):
        def forward(self, a, b):  # noqa: ANN001, ANN201
            return a, b

    with pytest.raises(StepContractError, match="cannot take the six encoder tensors"):
        check_forward_signature(TwoInputs(), "TwoInputs")
    codes, scores = np.zeros((2, 50, 3), np.int64), np.zeros((2, 50), np.float32)
    with pytest.raises(StepContractError, match="recommendations is float32"):
        check_outputs([codes.astype(np.float32), scores], 2, 50, "m")
    with pytest.raises(
        StepContractError, match=r"recommendations is int64 \[2, 50, 3\]; the contract wants int64 \[2, 20, 3\]"
    ):
        check_outputs([codes, scores], 2, 20, "m")
    with pytest.raises(StepContractError, match="NaN"):
        check_outputs([codes, np.full((2, 50), np.nan, np.float32)], 2, 50, "m")
    with pytest.raises(StepContractError, match="returns 3 outputs"):
        check_outputs([codes, scores, scores], 2, 50, "m")


def test_onnx_files_that_break_the_contract_name_the_tensor(tmp_path, sasrec_onnx):
    model = onnx.load(str(sasrec_onnx))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    onnx.save(model, tmp_path / "static.onnx")
    with pytest.raises(StepContractError, match="input encoder_l1_ids has a fixed batch axis of 4"):
        check_onnx_signature(tmp_path / "static.onnx", 50)
    model = onnx.load(str(sasrec_onnx))
    model.graph.input[5].type.tensor_type.elem_type = onnx.TensorProto.INT64
    onnx.save(model, tmp_path / "mask.onnx")
    with pytest.raises(StepContractError, match="input encoder_mask is INT64"):
        check_onnx_signature(tmp_path / "mask.onnx", 50)
    model = onnx.load(str(sasrec_onnx))
    model.graph.output[0].name = "codes"
    onnx.save(model, tmp_path / "names.onnx")
    with pytest.raises(StepContractError, match="outputs .*'codes'.* the step contract wants"):
        check_onnx_signature(tmp_path / "names.onnx", 50)


def test_the_validity_probe_measures_a_model_that_ignores_the_catalog(index):
    run = torch_runner(RepeatingCodes(index.codes), "repeating")
    validity = probe_catalog_validity(run, index, PackingConfig(64), histories=32)
    assert validity.valid_share == 0.5 and validity.rows_with_duplicates == 1.0 and validity.empty_share == 0
    with pytest.raises(ExportError, match="below the required 90.0%"):
        require_validity(validity, 0.9, "random")
    require_validity(validity, None, "random")  # reported, not fatal, by default


def test_the_sasrec_onnx_runs_in_onnx_runtime(sasrec_onnx, index):
    feed = random_encoder_batch(index, 3, 10, np.random.default_rng(2))
    check_outputs(onnx_runner(sasrec_onnx, data=catalog_data_for(sasrec_onnx, index))(feed), 3, 50, "onnx")
