import numpy as np
import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.model import UGTConfig

NEG = -np.inf


def test_identical_outputs_match():
    keys, scores = np.array([[3, 2, 1]]), np.array([[-1.0, -2.0, NEG]])
    assert ranked_mismatches(keys, scores, keys, scores, 1e-4) == []


def test_tied_entries_may_swap_but_others_may_not():
    scores = np.array([[-1.0, -1.00001, -2.0, -3.0]])
    ref = np.array([[1, 2, 3, 4]])
    assert ranked_mismatches(ref, scores, np.array([[2, 1, 3, 4]]), scores, 1e-4) == []
    problems = ranked_mismatches(ref, scores, np.array([[1, 2, 4, 3]]), scores, 1e-4)
    assert problems and "rank 2" in problems[0]


def test_score_differences_and_padding_are_reported():
    keys = np.array([[1, 2]])
    assert (
        "scores differ by up to 0.01"
        in ranked_mismatches(keys, np.array([[-1.0, -2.0]]), keys, np.array([[-1.0, -2.01]]), 1e-4)[0]
    )
    assert "padding" in ranked_mismatches(keys, np.array([[-1.0, NEG]]), keys, np.array([[-1.0, -2.0]]), 1e-4)[0]


def test_triples_compare_as_entries():
    scores = np.array([[-1.0, -2.0]])
    a = np.array([[[1, 2, 3], [4, 5, 6]]])
    b = np.array([[[1, 2, 3], [4, 5, 7]]])
    assert ranked_mismatches(a, scores, a, scores, 1e-4) == []
    assert ranked_mismatches(a, np.array([[-1.0, -3.0]]), b, np.array([[-1.0, -3.0]]), 1e-4) == []  # tail tie rule
    assert ranked_mismatches(b[:, ::-1], scores, a[:, ::-1], scores, 1e-4)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ExportConfig(engine="tvm"), "`engine` must be one of"),
        (lambda: ExportConfig(precision="fp16"), "fp16 is not available with engine onnxruntime"),
        (lambda: ExportConfig(engine="onnxruntime-trt", precision="int8"), "int8 is not available"),
        (lambda: TritonConfig(version_policy="newest"), "version_policy"),
        (lambda: TritonConfig(instance_kind="KIND_TPU"), "instance_kind"),
        (lambda: ExportConfig(min_batch_size=4, max_batch_size=2), "min_batch_size"),
        (lambda: ExportConfig(validation_shapes=((128, 4),)), "outside the export range"),
        (lambda: TritonConfig(ensemble_name="a b"), "model name"),
        (lambda: TritonConfig(model_name="preprocess"), "must differ"),
        (lambda: TritonConfig(preferred_batch_sizes=(128,)), "preferred_batch_sizes"),
        (lambda: TritonConfig(model_instances=0), "model_instances"),
        (lambda: BuildConfig(triton=TritonConfig(max_batch_size=128)), "exceeds the export range"),
    ],
)
def test_config_errors_name_the_field(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_export_range_must_fit_the_model():
    with pytest.raises(ConfigError, match="exceeds the model's `max_seq_length`"):
        BuildConfig().check_model(UGTConfig(max_seq_length=256))


def test_defaults_follow_the_range():
    config = ExportConfig(max_batch_size=8, max_seq_length=64)
    assert (config.opt_batch_size, config.opt_seq_length) == (8, 64)
    assert max(b for b, _ in config.validation_shapes) == 8
