"""`BuildConfig` (everything `build` needs) and the server kinds a repository can be built for."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ugt_ensemble.config.checks import require_positive_int
from ugt_ensemble.config.export import ExportConfig
from ugt_ensemble.config.model import UGTConfig
from ugt_ensemble.config.triton import ENGINES, TritonConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble.runtime.parameters import ModelStepParameters, PostprocessParameters, PreprocessParameters
from ugt_ensemble.runtime.rule_lists import request_list_limit

#: Servers a repository can be built for:
#: - "cpu-wheel": the CPU tritonserver of the nvidia-pytriton wheel (Python backend only; the model
#:   step runs ONNX Runtime inside a Python-backend model, with this package's Python);
#: - "ngc": NVIDIA's tritonserver container (TensorRT and onnxruntime backends; its Python has numpy
#:   but no onnxruntime, so the model step must be native: TensorRT where it is installed at build
#:   time, else Triton's onnxruntime backend).
TARGET_SERVERS: tuple[str, ...] = ("cpu-wheel", "ngc")


def tensorrt_available() -> bool:
    """True when TensorRT can build here: the Python package and an NVIDIA driver (a device node)."""
    return importlib.util.find_spec("tensorrt") is not None and Path("/dev/nvidiactl").exists()


def resolve_target_server(target: str = "auto", engine: str | None = None) -> str:
    """`target`, or for "auto": the kind `engine` needs, else "ngc" where TensorRT can build here, else
    "cpu-wheel"."""
    if target == "auto":
        if engine is not None:
            return "cpu-wheel" if ENGINES.get(engine, (engine, None))[0] == "onnxruntime" else "ngc"
        return "ngc" if tensorrt_available() else "cpu-wheel"
    if target not in TARGET_SERVERS:
        raise ConfigError(f"`target_server` must be auto or one of {', '.join(TARGET_SERVERS)}; got {target!r}")
    return target


#: The opset asked for ONNX Runtime engines. ONNX gained a Gelu operator in opset 20; below it torch writes Gelu
#: as Erf arithmetic that ONNX Runtime 1.32 does not fuse, which made the CPU model step 10-19 % slower than at
#: opset 20 (measured on the reference UGT, batch 1 and 8 at length 100). TensorRT builds keep ExportConfig's 17.
ORT_OPSET = 20


def target_server_settings(target: str, engine: str | None = None) -> tuple[dict[str, Any], TritonConfig]:
    """(ExportConfig changes, TritonConfig) that a build for server kind `target` starts from, with the
    model step on `engine` (None: the kind's default: TensorRT for ngc where it is installed here, else
    Triton's onnxruntime backend; ONNX Runtime in the Python backend for cpu-wheel)."""
    if target == "cpu-wheel":
        if engine not in (None, "onnxruntime"):
            raise ConfigError(f"the CPU wheel's tritonserver has the Python backend only: engine {engine!r} needs ngc")
        return {"precision": "fp32", "opset_version": ORT_OPSET}, TritonConfig.cpu()
    engine = engine or ("tensorrt" if tensorrt_available() else "onnxruntime-backend")
    platform, accelerator = ENGINES.get(engine, (engine, None))
    if platform == "onnxruntime":
        raise ConfigError("NVIDIA's container has no onnxruntime in its Python: use a native engine for ngc")
    if platform == "tensorrt_plan":
        return {}, TritonConfig()  # TritonConfig's defaults: TensorRT, fp16, on GPU 0
    kind = {"tensorrt": "KIND_GPU", "openvino": "KIND_CPU"}.get(accelerator or "", "KIND_AUTO")
    opset = ORT_OPSET if accelerator is None else ExportConfig.opset_version  # accelerators: onnx-tensorrt's 9-20
    return {"precision": "fp32", "opset_version": opset}, TritonConfig(
        platform=platform, execution_accelerator=accelerator, instance_kind=kind, gpus=()
    )


@dataclass(frozen=True)
class BuildConfig:
    """Everything `build` needs; the cross-field checks of the three configs run here, and the step configs
    of `triton` are composed here with `export` into the parameters each Python-backend adapter reads.

    Attributes:
        output_dir: the model repository to write.
        export, triton: the export and serving settings.
        model_config: the reference UGT's architecture (None: the checkpoint's own, or the defaults).
        checkpoint: reference UGT weights (None: a seeded initialisation, `seed`).
        model_file: the user's own model step, a `torch.export` archive (.pt2).
        onnx_path: an exported model step; served as it is when no PyTorch model is given (checked
            against the contract), else validated against that model instead of exporting again.
        plan_path: a TensorRT engine built from `onnx_path` (tensorrt_plan): validated and served
            instead of building another.
        synthetic_items: size of the synthetic catalog used when `export.catalog_path` is None.
        seed: seed of the initialisation and of every synthetic input.
        target_server: the server kind the build is for (recorded in the manifest; see TARGET_SERVERS).
    """

    output_dir: Path = Path("ensemble")
    export: ExportConfig = field(default_factory=ExportConfig)
    triton: TritonConfig = field(default_factory=TritonConfig)
    model_config: UGTConfig | None = None
    checkpoint: Path | None = None
    model_file: Path | None = None
    onnx_path: Path | None = None
    plan_path: Path | None = None
    synthetic_items: int = 10_000
    seed: int = 0
    target_server: str | None = None

    def __post_init__(self) -> None:
        require_positive_int("synthetic_items", self.synthetic_items)
        for name in ("output_dir", "checkpoint", "model_file", "onnx_path", "plan_path"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.model_file is not None and (self.checkpoint is not None or self.model_config is not None):
            raise ConfigError("a model file (--model) replaces the reference UGT: drop --checkpoint and --model-config")
        if self.export.precision not in self.triton.precisions:
            raise ConfigError(
                f"precision {self.export.precision} is not available with platform {self.triton.engine} "
                f"(allowed: {', '.join(self.triton.precisions)})"
            )
        if self.plan_path is not None and (self.triton.platform != "tensorrt_plan" or self.onnx_path is None):
            raise ConfigError("a TensorRT engine (plan_path) is served by platform tensorrt_plan, with its onnx_path")
        if self.export.model_name in self.triton.step_names:
            raise ConfigError(f"the ensemble name {self.export.model_name!r} is also a step's name")

    @property
    def serves_bare_onnx(self) -> bool:
        """True when the ONNX file is the model step itself (no PyTorch model to check it against)."""
        return (
            self.onnx_path is not None
            and self.model_file is None
            and self.checkpoint is None
            and self.model_config is None
        )

    @property
    def model_names(self) -> list[str]:
        """The models this build writes: the ensemble, its steps, and the naive peer if asked for."""
        t = self.triton
        names = [self.export.model_name, t.preprocess_name, t.step_name, t.postprocess_name]
        return names + ([t.naive_peer_name] if t.naive_peer else [])

    @property
    def packing(self) -> PackingConfig:
        """How preprocess pads histories (shared by the client and the reference pipeline)."""
        return self.triton.preprocess.packing(self.export.max_seq_length)

    @property
    def profile_bounds_rules(self) -> bool:
        """Whether the model step's engine bounds the rule lists (a TensorRT profile: `ExportConfig.max_rule_list`)."""
        return self.triton.platform == "tensorrt_plan" and self.triton.model_step.rules_in_search

    @property
    def rule_list_bound(self) -> int:
        """The most catalog items one request's rules may remove: the TensorRT profile's bound, else what the
        request limits allow (`rule_lists.request_list_limit`). Every step bounds its rule lists by it."""
        if self.profile_bounds_rules:
            return self.export.max_rule_list
        return request_list_limit(self.triton.preprocess.max_events)

    def preprocess_parameters(self) -> PreprocessParameters:
        """What the preprocess adapter reads in `initialize` (a TensorRT step bounds the rule lists by its profile;
        0: no bound beyond the request limits)."""
        t = self.triton
        bound = self.export.max_rule_list if self.profile_bounds_rules else 0
        return t.preprocess.parameters(self.export, t.postprocess.exclude_history, t.model_step.rules_in_search, bound)

    def model_step_parameters(self) -> ModelStepParameters:
        """What the Python-backend model step reads in `initialize`."""
        return self.triton.model_step.parameters(self.triton.engine, self.export, self.packing, self.rule_list_bound)

    def postprocess_parameters(self) -> PostprocessParameters:
        """What the postprocess adapter reads in `initialize`."""
        return self.triton.postprocess.parameters(self.export, self.rule_list_bound)

    @property
    def preferred_batch_sizes(self) -> tuple[int, ...]:
        """The model step's preferred batch sizes within `max_batch_size`."""
        return self.triton.preferred_sizes_up_to(self.export.max_batch_size)
