import numpy as np
import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig, UGTConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.export.compare import ranked_mismatches

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
        (lambda: TritonConfig(platform="tvm"), "`platform` must be one of"),
        (lambda: BuildConfig(triton=TritonConfig.cpu()), "fp16 is not available with platform onnxruntime"),
        (
            lambda: BuildConfig(export=ExportConfig(precision="int8"), triton=TritonConfig(platform="onnxruntime-trt")),
            "int8 is not available",
        ),
        (lambda: TritonConfig(platform="onnxruntime"), "instance_kind='KIND_CPU'"),
        (lambda: TritonConfig(instance_kind="KIND_CPU", gpus=(0,)), "need instance_kind KIND_GPU"),
        (lambda: TritonConfig(platform="tensorrt", execution_accelerator="openvino"), "already names"),
        (lambda: TritonConfig().with_changes(version_policy="newest"), "version_policy"),
        (lambda: TritonConfig(instance_kind="KIND_TPU"), "instance_kind"),
        (lambda: ExportConfig(min_batch_size=4, max_batch_size=2), "min_batch_size"),
        (lambda: ExportConfig(validation_shapes=((128, 4),)), "outside the export range"),
        (lambda: ExportConfig(model_name="a b"), "model name"),
        (lambda: TritonConfig(step_name="preprocess"), "must differ"),
        (lambda: TritonConfig(preferred_batch_sizes=(0,)), "preferred_batch_sizes"),
        (lambda: TritonConfig(instance_count=0), "instance_count"),
        (lambda: BuildConfig(export=ExportConfig(model_name="preprocess")), "also a step's name"),
        (lambda: BuildConfig(model_file="m.pt2", checkpoint="c.pt"), "drop --checkpoint"),
        (lambda: BuildConfig(plan_path="m.plan"), "with its onnx_path"),
    ],
)
def test_config_errors_name_the_field(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_export_range_must_fit_the_model(catalog):
    from ugt_ensemble.model.step import reference_ugt

    config = BuildConfig(model_config=UGTConfig(max_seq_length=256))
    with pytest.raises(ConfigError, match="exceeds the model's `max_seq_length`"):
        reference_ugt(config, catalog)


def test_defaults_follow_the_range():
    config = ExportConfig(max_batch_size=8, max_seq_length=64)
    assert (config.opt_batch_size, config.opt_seq_length) == (8, 64)
    assert max(b for b, _ in config.validation_shapes) == 8


def test_the_seeds_defaults_and_field_names():
    """002 §3.1, as written: a TensorRT model step in fp16 on GPU 0."""
    e, t = ExportConfig(), TritonConfig()
    assert (e.model_name, e.precision, e.max_batch_size, e.max_seq_length) == ("ugt_recommend", "fp16", 64, 1024)
    assert (e.min_batch_size, e.opt_batch_size, e.min_seq_length, e.opt_seq_length) == (1, 32, 1, 512)
    assert (e.opset_version, e.do_constant_folding, e.workspace_size_gb) == (17, True, 4)
    assert (e.codebook_sizes, e.num_recommendations) == ((1024, 4096, 16384), 50)
    assert (t.platform, t.instance_count, t.preferred_batch_sizes, t.max_queue_delay_us) == (
        "tensorrt_plan",
        2,
        (8, 16, 32, 64),
        100,
    )
    assert (t.gpus, t.instance_kind, t.enable_dynamic_batching) == ((0,), "KIND_GPU", True)
    assert TritonConfig.cpu().engine == "onnxruntime" and e.validate() is e


def test_platform_takes_triton_names_and_engine_names():
    assert TritonConfig(platform="onnxruntime-trt").execution_accelerator == "tensorrt"
    assert TritonConfig(platform="onnxruntime_onnx", instance_kind="KIND_AUTO", gpus=()).engine == "onnxruntime-backend"
    assert TritonConfig(platform="tensorrt").platform == "tensorrt_plan"
