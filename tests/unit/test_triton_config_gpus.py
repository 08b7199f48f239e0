"""`gpus` left unset follows the instance kind; set with KIND_CPU, it stays an error."""

import dataclasses

import pytest

from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError


def test_a_cpu_kind_without_gpus_is_accepted_as_the_seeds_write_it():
    config = TritonConfig(platform="onnxruntime", instance_kind="KIND_CPU", instance_count=1)
    assert config.gpus == () and config.instance_kind == "KIND_CPU"
    assert BuildConfig(export=ExportConfig(precision="fp32"), triton=config).triton.python_model_step


def test_gpu_kinds_keep_the_seeds_default_gpu():
    assert TritonConfig().gpus == (0,)
    assert TritonConfig(platform="onnxruntime_onnx", instance_kind="KIND_AUTO").gpus == (0,)


def test_explicit_gpus_with_a_cpu_kind_stay_an_error():
    with pytest.raises(ConfigError, match=r"`gpus` \(0,\) need instance_kind KIND_GPU or KIND_AUTO"):
        TritonConfig(platform="onnxruntime", instance_kind="KIND_CPU", gpus=(0,))


def test_a_default_follows_a_changed_kind_and_survives_the_manifest():
    cpu = TritonConfig(platform="onnxruntime_onnx").with_changes(instance_kind="KIND_CPU")
    assert cpu.gpus == ()
    assert TritonConfig(platform="onnxruntime_onnx", gpus=(1,)).with_changes(instance_kind="KIND_AUTO").gpus == (1,)
    saved = dataclasses.asdict(TritonConfig(platform="onnxruntime", instance_kind="KIND_CPU"))
    assert TritonConfig(**saved).gpus == () and "_gpus_defaulted" not in saved
