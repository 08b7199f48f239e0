"""Rendering every config.pbtxt and checking repositories offline (no server)."""

import shutil
from pathlib import Path

import jinja2
import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig, target_server_settings
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.repository.render import render_configs, render_template
from ugt_ensemble.repository.rules import check_repository, parse_config
from ugt_ensemble.repository.writer import write_models


def cpu_build(export: dict | None = None, **triton) -> BuildConfig:
    return BuildConfig(export=ExportConfig(precision="fp32", **(export or {})), triton=TritonConfig.cpu(**triton))


@pytest.fixture
def configs():
    return render_configs(cpu_build(preferred_batch_sizes=(4, 16)))


def test_every_config_parses_into_triton_model_config(configs):
    parsed = {name: parse_config(text, name) for name, text in configs.items()}
    ensemble = parsed["ugt_recommend"]
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 64
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == ["preprocess", "ugt_trt", "postprocess"]
    assert [o.name for o in ensemble.output] == ["ITEM_IDS", "SCORES", "SEMANTIC_IDS"]
    model = parsed["ugt_trt"]
    assert model.backend == "python" and all(i.allow_ragged_batch for i in model.input)
    assert list(model.dynamic_batching.preferred_batch_size) == [4, 16]
    assert model.parameters["intra_op_threads"].string_value == "2"
    assert parsed["preprocess"].parameters["length_buckets"].string_value == "8,16,32,64,128,256,512,1024"


def test_rule_tensors_flow_into_the_search_and_postprocess_and_exclude_history_is_the_default():
    configs = render_configs(cpu_build(exclude_history=True))
    rules = {"rule_set", "rule_l1_valid", "rule_dead_pairs", "rule_removed_items"}
    pre, step = parse_config(configs["preprocess"], "preprocess"), parse_config(configs["ugt_trt"], "ugt_trt")
    post = parse_config(configs["postprocess"], "postprocess")
    assert [o.name for o in pre.output] == ["ugt_bundle"]  # the encoder and rule tensors, bundled for a Python step
    assert {i.name for i in step.input} >= rules | {"ugt_bundle"}  # either the bundle or the tensors themselves
    assert all(i.optional for i in step.input)  # the step names what a direct caller left out
    assert {i.name for i in post.input} >= rules and "encoder_mask" not in {i.name for i in post.input}
    native = render_configs(cpu_build(platform="onnxruntime_onnx"))
    assert {o.name for o in parse_config(native["preprocess"], "preprocess").output} >= rules | {"encoder_mask"}
    assert pre.parameters["exclude_history"].string_value == "true"
    assert step.parameters["catalog_file"].string_value == "catalog"
    plain = render_configs(cpu_build(rules_in_search=False))
    assert not rules & {i.name for i in parse_config(plain["ugt_trt"], "ugt_trt").input}


def test_custom_names_flow_into_every_config():
    names = dict(preprocess_name="pre", step_name="engine", postprocess_name="post")
    configs = render_configs(cpu_build({"model_name": "reco"}, **names))
    assert set(configs) == {"reco", "pre", "engine", "post"}
    steps = parse_config(configs["reco"], "reco").ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["pre", "engine", "post"]


def test_missing_template_values_fail_loudly():
    with pytest.raises(jinja2.UndefinedError):
        render_template("preprocess.pbtxt.j2", name="x")


def test_misspelt_fields_are_rejected():
    with pytest.raises(RepositoryError, match="bad.pbtxt"):
        parse_config('name: "x"\nmax_batch_sise: 4\n', "bad.pbtxt")


@pytest.fixture
def repository(tmp_path, catalog):
    write_models(tmp_path, cpu_build(), catalog.index())
    (tmp_path / "ugt_trt" / "1" / "model.onnx").write_bytes(b"placeholder for the file check")
    return tmp_path


def test_written_repository_passes(repository):
    report = check_repository(repository)
    assert report.valid, report.errors
    assert set(report.info["models"]) == {"ugt_recommend", "preprocess", "ugt_trt", "postprocess"}
    assert (repository / "preprocess" / "1" / "ugt_runtime" / "packing.py").is_file()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("model", "old", "new", "error"),
    [
        ("preprocess", "max_batch_size: 64", "max_batch_size: 8", "has max_batch_size 8 < the ensemble's 64"),
        (
            "ugt_recommend",
            'output_map { key: "ugt_bundle" value: "ugt_bundle" }',
            'output_map { key: "ugt_bundle" value: "ugt_bundel" }',
            "tensor 'ugt_bundle' is consumed by ['ugt_trt.ugt_bundle'] but never produced",
        ),
        (
            "ugt_trt",
            "data_type: TYPE_UINT8\n    dims: [ -1 ]",
            "data_type: TYPE_INT64\n    dims: [ -1 ]",
            "tensor 'ugt_bundle' is TYPE_UINT8",
        ),
        (
            "ugt_recommend",
            'platform: "ensemble"',
            'platform: "ensemble"\ninstance_group [{ count: 1 }]',
            "ensemble must not set instance_group",
        ),
        ("ugt_recommend", 'model_name: "postprocess"', 'model_name: "post"', "'post' is not in the repository"),
        ("postprocess", 'name: "SCORES"', 'name: "SCORE"', "step 'postprocess' has no output 'SCORES'"),
        ("preprocess", 'name: "preprocess"', 'name: "pre"', "differs from its directory"),
    ],
)
def test_broken_repositories_are_caught(repository, model, old, new, error):
    _edit(repository / model / "config.pbtxt", old, new)
    report = check_repository(repository)
    assert not report.valid
    assert any(error in e for e in report.errors), report.errors


def test_missing_model_files_are_caught(repository):
    (repository / "ugt_trt" / "1" / "model.py").unlink()
    shutil.rmtree(repository / "ugt_recommend" / "1")
    errors = check_repository(repository).errors
    assert "ugt_trt/1: missing model.py" in errors
    assert any("ugt_recommend: no version directory" in e for e in errors)


@pytest.mark.parametrize(
    ("engine", "precision", "platform", "model_file"),
    [
        ("tensorrt", "fp16", "tensorrt_plan", "model.plan"),
        ("onnxruntime-backend", "fp32", "onnxruntime_onnx", "model.onnx"),
        ("onnxruntime-trt", "fp16", "onnxruntime_onnx", "model.onnx"),
        ("onnxruntime-openvino", "fp32", "onnxruntime_onnx", "model.onnx"),
    ],
)
def test_native_engines_emit_valid_repositories(tmp_path, catalog, engine, precision, platform, model_file):
    _, base = target_server_settings("ngc", engine)
    triton = base.with_changes(cuda_graphs=True, version_policy="latest:2")
    config = BuildConfig(export=ExportConfig(precision=precision), triton=triton)
    write_models(tmp_path, config, catalog.index())
    (tmp_path / "ugt_trt" / "1" / model_file).write_bytes(b"engine placeholder for the file check")
    report = check_repository(tmp_path)
    assert report.valid, report.errors
    step = report.configs["ugt_trt"]
    assert step.platform == platform and not (tmp_path / "ugt_trt" / "1" / "model.py").exists()
    assert step.version_policy.latest.num_versions == 2 and len(step.model_warmup) == 2
    assert step.optimization.cuda.graphs == (engine == "tensorrt")
    accelerators = step.optimization.execution_accelerators
    names = [a.name for a in (*accelerators.gpu_execution_accelerator, *accelerators.cpu_execution_accelerator)]
    assert names == {"onnxruntime-trt": ["tensorrt"], "onnxruntime-openvino": ["openvino"]}.get(engine, [])
    if engine == "onnxruntime-trt":
        assert dict(accelerators.gpu_execution_accelerator[0].parameters)["precision_mode"] == "FP16"


def test_the_queue_policy_and_preprocess_isolation_are_rendered():
    parsed = {n: parse_config(t, n) for n, t in render_configs(cpu_build(max_queue_size=8, queue_timeout_us=5)).items()}
    pre, step = parsed["preprocess"].dynamic_batching, parsed["ugt_trt"].dynamic_batching
    assert list(pre.preferred_batch_size) == [1] and pre.max_queue_delay_microseconds == 0
    assert pre.default_queue_policy.max_queue_size == 8 and step.default_queue_policy.default_timeout_microseconds == 5
    plain = parse_config(render_configs(cpu_build())["ugt_trt"], "ugt_trt").dynamic_batching
    assert not plain.HasField("default_queue_policy")  # off by default (RELIABILITY.md: it costs p99)


def test_pinned_step_versions_reach_the_ensemble():
    text = render_configs(cpu_build(), versions={"preprocess": 3, "ugt_trt": 3, "postprocess": 3})["ugt_recommend"]
    steps = parse_config(text, "ugt_recommend").ensemble_scheduling.step
    assert [s.model_version for s in steps] == [3, 3, 3]


def test_k_recommendations_flow_into_every_shape():
    parsed = {n: parse_config(t, n) for n, t in render_configs(cpu_build({"num_recommendations": 20})).items()}
    assert list(parsed["ugt_recommend"].output[2].dims) == [20, 3]
    assert list(parsed["ugt_trt"].output[0].dims) == [20, 3]
    assert parsed["postprocess"].parameters["num_recommendations"].string_value == "20"
