"""One typed config per step: what the build renders is what each adapter reads back, flags and old
names land in the step they belong to, and build manifests of both shapes read back."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from ugt_ensemble.cli.build import add_parser, config_from_args
from ugt_ensemble.config import (
    BuildConfig,
    ExportConfig,
    ModelStepConfig,
    PostprocessConfig,
    PreprocessConfig,
    QueuePolicy,
    TritonConfig,
)
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository.manifest import MANIFEST
from ugt_ensemble.repository.render import render_configs
from ugt_ensemble.repository.rules import parse_config
from ugt_ensemble.repository.step_settings import StepSettings, write_step_settings
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.runtime.parameters import ModelStepParameters, PostprocessParameters, PreprocessParameters
from ugt_ensemble.serving.versions import VersionedRepository

#: A manifest's "triton" record as builds wrote it before the step configs (every setting flat).
FLAT_RECORD = {
    "platform": "onnxruntime", "instance_count": 1, "preferred_batch_sizes": [], "max_queue_delay_us": 0,
    "gpus": [], "instance_kind": "KIND_CPU", "enable_dynamic_batching": True, "execution_accelerator": None,
    "preprocess_name": "preprocess", "step_name": "ugt_trt", "postprocess_name": "postprocess",
    "preprocess_instances": 3, "postprocess_instances": 2, "intra_op_threads": 4, "allow_spinning": False,
    "length_buckets": [16, 64, 1024], "exclude_history": True, "max_request_bytes": 4096, "max_events": 500,
    "max_queue_size": 8, "queue_timeout_us": 5, "preprocess_batch_requests": True, "ort_memory_arena": False,
    "max_batch_tokens": 2048, "naive_peer": False, "naive_peer_name": "ugt_naive", "cuda_graphs": False,
    "warmup": False, "response_cache": True, "version_policy": "latest:2", "accelerator_workspace_mib": 512,
}  # fmt: skip


def _build(triton: TritonConfig) -> BuildConfig:
    return BuildConfig(export=ExportConfig(precision="fp32", max_seq_length=512, num_recommendations=20), triton=triton)


def test_each_adapter_reads_back_exactly_what_its_step_config_composes():
    config = _build(TritonConfig.from_dict(FLAT_RECORD))
    parsed = {name: parse_config(text, name) for name, text in render_configs(config).items()}
    read = {name: {k: v.string_value for k, v in model.parameters.items()} for name, model in parsed.items()}
    assert PreprocessParameters.from_config(read["preprocess"]) == config.preprocess_parameters()
    assert ModelStepParameters.from_config(read["ugt_trt"]) == config.model_step_parameters()
    assert PostprocessParameters.from_config(read["postprocess"]) == config.postprocess_parameters()
    assert config.preprocess_parameters().length_buckets == (16, 64, 512)  # capped at max_seq_length
    assert config.model_step_parameters().warmup_length == 0 and not config.model_step_parameters().memory_arena
    assert [g.count for g in parsed["preprocess"].instance_group] == [3]
    assert [g.count for g in parsed["postprocess"].instance_group] == [2]
    for name in ("preprocess", "ugt_trt", "postprocess"):
        policy = parsed[name].dynamic_batching.default_queue_policy
        assert (policy.max_queue_size, policy.default_timeout_microseconds) == (8, 5)
    assert list(parsed["preprocess"].dynamic_batching.preferred_batch_size) == []  # batch_requests: no cap at 1
    assert parsed["ugt_trt"].response_cache.enable and parsed["ugt_trt"].version_policy.latest.num_versions == 2


def test_a_queue_policy_can_differ_per_step():
    triton = TritonConfig.cpu(model_step=ModelStepConfig(queue=QueuePolicy(max_queue_size=16)))
    parsed = {name: parse_config(text, name) for name, text in render_configs(_build(triton)).items()}
    assert parsed["ugt_trt"].dynamic_batching.default_queue_policy.max_queue_size == 16
    assert not parsed["preprocess"].dynamic_batching.HasField("default_queue_policy")


def test_former_flat_names_set_the_step_they_belong_to():
    triton = TritonConfig.cpu(max_batch_tokens=1024, exclude_history=True, max_queue_size=4, preprocess_instances=2)
    assert triton.model_step.max_batch_tokens == 1024 and triton.postprocess.exclude_history
    assert triton.preprocess.instances == 2
    assert {triton.preprocess.queue, triton.model_step.queue, triton.postprocess.queue} == {QueuePolicy(4, 0)}
    changed = triton.with_changes(warmup=False, ort_memory_arena=False, instance_kind="KIND_CPU")
    assert not changed.model_step.warmup and not changed.model_step.memory_arena
    assert changed.model_step.max_batch_tokens == 1024  # the other settings stay
    with pytest.raises(ConfigError, match=r"unknown TritonConfig field\(s\) \['max_batch_token'\]"):
        triton.with_changes(max_batch_token=1)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ModelStepConfig(max_batch_tokens=0), "`model_step.max_batch_tokens` must be a positive int"),
        (lambda: ModelStepConfig(version_policy="newest"), "version_policy"),
        (lambda: PreprocessConfig(length_buckets=()), "`length_buckets` must hold at least one length"),
        (lambda: PreprocessConfig(max_events=0), "`preprocess.max_events`"),
        (lambda: PostprocessConfig(instances=0), "`postprocess.instances`"),
        (lambda: QueuePolicy(queue_timeout_us=-1), "`queue_timeout_us` must be an int >= 0"),
        (lambda: TritonConfig.from_dict({**FLAT_RECORD, "model_step": {"threads": 2}}), "ModelStepConfig"),
    ],
)
def test_each_step_config_checks_its_own_fields(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_manifests_of_both_shapes_read_back_to_the_same_config():
    old = TritonConfig.from_dict(FLAT_RECORD)
    record = json.loads(json.dumps(dataclasses.asdict(old)))
    assert isinstance(record["model_step"], dict) and "max_batch_tokens" not in record
    assert TritonConfig.from_dict(record) == old == TritonConfig(**record)
    assert record["preprocess_name"] == "preprocess" and record["step_name"] == "ugt_trt"  # names stay flat


def _parse_build(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(), parents=[])
    return parser.parse_args(["build", *flags])


def test_build_flags_fill_the_step_configs():
    args = _parse_build(
        "--target-server", "cpu-wheel", "--max-batch-tokens", "1024", "--exclude-history",
         "--length-buckets", "16,64", "--max-queue-size", "4", "--queue-timeout-us", "7", "--no-warmup",
         "--intra-op-threads", "3", "--version-policy", "latest:2", "--instance-count", "2",
    )  # fmt: skip
    triton = config_from_args(args).triton
    assert triton.instance_count == 2 and triton.platform == "onnxruntime"
    assert triton.model_step == ModelStepConfig(
        intra_op_threads=3, max_batch_tokens=1024, warmup=False, version_policy="latest:2", queue=QueuePolicy(4, 7)
    )
    assert triton.preprocess == PreprocessConfig(length_buckets=(16, 64), queue=QueuePolicy(4, 7))
    assert triton.postprocess == PostprocessConfig(exclude_history=True, queue=QueuePolicy(4, 7))
    plain = config_from_args(_parse_build("--target-server", "cpu-wheel")).triton
    assert plain == TritonConfig.cpu()


def test_tuned_threads_are_recorded_in_the_model_steps_record(tmp_path, catalog):
    config = _build(TritonConfig.cpu())
    write_models(tmp_path, config, catalog.index())
    (tmp_path / "ugt_trt" / "1" / "model.onnx").write_bytes(b"placeholder for the file check")
    (tmp_path / MANIFEST).write_text(json.dumps({"triton": dataclasses.asdict(config.triton)}))
    write_step_settings(tmp_path, "ugt_trt", StepSettings(2, 1, 100), "Tuned on a test")
    record = json.loads((tmp_path / MANIFEST).read_text())["triton"]
    assert "intra_op_threads" not in record and record["instance_count"] == 2
    tuned = TritonConfig.from_dict(record)
    assert tuned.model_step.intra_op_threads == 1 and tuned.max_queue_delay_us == 100


def test_a_repository_built_before_the_step_configs_rebuilds_with_its_settings(tmp_path):
    export = json.loads(json.dumps(dataclasses.asdict(ExportConfig(precision="fp32")), default=str))
    manifest = {"generator": "ugt-ensemble 0.9", "ensemble": "ugt_recommend", "export": export, "triton": FLAT_RECORD}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    config = VersionedRepository(tmp_path).build_config()
    assert config.triton.model_step.max_batch_tokens == 2048 and config.triton.postprocess.exclude_history
    assert config.packing.buckets == (16, 64, 1024) and config.triton.preprocess.queue == QueuePolicy(8, 5)
