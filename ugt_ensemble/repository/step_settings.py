"""The model step's serving settings (instances, ONNX Runtime threads, queue delay) in a built repository.

`bench --tune` reads them from the emitted config, tries others through Triton's load API, and writes
the winner back with `write_step_settings`, which re-checks the whole repository before keeping it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.manifest import read_manifest, write_manifest
from ugt_ensemble.repository.rules import parse_config, read_config

THREADS_PARAMETER = "intra_op_threads"


@dataclass(frozen=True)
class StepSettings:
    """Model-step settings; `intra_op_threads` is None for engines without that knob (native backends)."""

    instances: int
    intra_op_threads: int | None
    max_queue_delay_us: int

    def __post_init__(self) -> None:
        if self.instances < 1 or (self.intra_op_threads is not None and self.intra_op_threads < 1):
            raise ConfigError(f"instances and intra-op threads must be >= 1, got {self}")
        if self.max_queue_delay_us < 0:
            raise ConfigError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")

    def label(self) -> str:
        threads = self.intra_op_threads
        threads_text = "" if threads is None else f" x {threads} thread{'s' if threads > 1 else ''}"
        return f"{self.instances} inst{threads_text}, delay {self.max_queue_delay_us} us"

    def build_flags(self) -> str:
        """The `build` options that emit these settings."""
        flags = f"--instance-count {self.instances}"
        if self.intra_op_threads is not None:
            flags += f" --intra-op-threads {self.intra_op_threads}"
        return flags + f" --max-queue-delay-us {self.max_queue_delay_us}"


def read_step_config(repository: Path, model_name: str) -> mc.ModelConfig:
    """The model step's parsed config.pbtxt (RepositoryError naming the file if it is missing or invalid)."""
    return read_config(Path(repository) / model_name / "config.pbtxt")


def settings_of(config: mc.ModelConfig) -> StepSettings:
    """The settings a model-step config holds now."""
    threads = config.parameters[THREADS_PARAMETER].string_value if THREADS_PARAMETER in config.parameters else None
    return StepSettings(
        instances=sum(group.count or 1 for group in config.instance_group) or 1,
        intra_op_threads=int(threads) if threads else None,
        max_queue_delay_us=config.dynamic_batching.max_queue_delay_microseconds,
    )


def with_settings(config: mc.ModelConfig, settings: StepSettings) -> mc.ModelConfig:
    """A copy of `config` with `settings` applied (one instance group; kind and GPUs kept)."""
    if (settings.intra_op_threads is None) != (THREADS_PARAMETER not in config.parameters):
        raise ConfigError(f"model {config.name!r}: intra-op threads apply only to the ONNX Runtime Python model step")
    updated = mc.ModelConfig()
    updated.CopyFrom(config)
    group = mc.ModelInstanceGroup()
    if config.instance_group:
        group.CopyFrom(config.instance_group[0])
    group.count = settings.instances
    del updated.instance_group[:]
    updated.instance_group.append(group)
    if settings.intra_op_threads is not None:
        updated.parameters[THREADS_PARAMETER].string_value = str(settings.intra_op_threads)
    updated.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    return updated


def config_json(config: mc.ModelConfig) -> str:
    """`config` as the JSON that Triton's load API takes as a config override."""
    return json_format.MessageToJson(config, preserving_proto_field_name=True)


def write_step_settings(repository: Path, model_name: str, settings: StepSettings, note: str) -> Path:
    """Write `settings` into the model step's config.pbtxt and the build manifest.

    The repository is validated afterwards (`validate_deployment`); if that fails, the old config is
    restored and ConfigError names the problems.
    """
    path = Path(repository) / model_name / "config.pbtxt"
    old_text = path.read_text(encoding="utf-8")
    config = with_settings(parse_config(old_text, str(path)), settings)
    header = [line for line in old_text.splitlines() if line.startswith("#")]
    path.write_text("\n".join([*header, f"# {note}", text_format.MessageToString(config)]), encoding="utf-8")
    report = validate_deployment(repository)
    if not report["valid"]:
        path.write_text(old_text, encoding="utf-8")
        raise ConfigError(f"{path}: tuned config rejected, kept the old one: " + "; ".join(report["errors"]))
    _record_in_manifest(Path(repository), settings, note)
    return path


def _record_in_manifest(repository: Path, settings: StepSettings, note: str) -> None:
    try:
        manifest = read_manifest(repository)
    except InputFileError:
        return  # not written by `build`; the config itself is the record
    triton = manifest.setdefault("triton", {})
    triton["instance_count"] = settings.instances
    triton["max_queue_delay_us"] = settings.max_queue_delay_us
    if settings.intra_op_threads is not None:  # a ModelStepConfig field; flat in manifests of older builds
        step = triton.get("model_step")
        (step if isinstance(step, dict) else triton)["intra_op_threads"] = settings.intra_op_threads
    manifest["tuned"] = {**asdict(settings), "note": note}
    write_manifest(repository, manifest)
