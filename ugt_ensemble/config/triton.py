"""`TritonConfig`: how the repository serves: the model step's core fields, the models' names, one config per step."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ugt_ensemble.config.checks import (
    int_tuple,
    require_model_name,
    require_non_negative_int,
    require_one_of,
    require_positive_int,
)
from ugt_ensemble.config.export import PRECISIONS
from ugt_ensemble.config.steps import (
    STEP_CONFIGS,
    STEP_FIELDS,
    ModelStepConfig,
    PostprocessConfig,
    PreprocessConfig,
    apply_step_fields,
    as_step_config,
    parse_version_policy,
)
from ugt_ensemble.errors import ConfigError

__all__ = ["DEFAULT_GPUS", "ENGINES", "INSTANCE_KINDS", "PLATFORMS", "TritonConfig", "parse_version_policy"]

#: Model-step platforms: Triton's own names, and this package's engine "onnxruntime" (ONNX Runtime inside
#: a Python-backend model: any tritonserver, including the CPU build of the nvidia-pytriton wheel).
PLATFORMS: tuple[str, ...] = ("tensorrt_plan", "onnxruntime_onnx", "onnxruntime")
#: Engine names (the CLI's `--engine`) -> (platform, execution accelerator of the onnxruntime backend).
ENGINES: dict[str, tuple[str, str | None]] = {
    "onnxruntime": ("onnxruntime", None),
    "tensorrt": ("tensorrt_plan", None),
    "onnxruntime-backend": ("onnxruntime_onnx", None),
    "onnxruntime-trt": ("onnxruntime_onnx", "tensorrt"),
    "onnxruntime-openvino": ("onnxruntime_onnx", "openvino"),
}
INSTANCE_KINDS: tuple[str, ...] = ("KIND_GPU", "KIND_CPU", "KIND_AUTO")
#: `gpus` for GPU kinds when none are given.
DEFAULT_GPUS: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class TritonConfig:
    """The emitted model repository. The first seven fields and their defaults are the original
    design's: a TensorRT model step on GPU 0. `TritonConfig.cpu()` gives the CPU settings.

    Those seven concern the model step: `platform`, `instance_count` (instances per GPU),
    `preferred_batch_sizes` (sizes above max_batch_size are left out), `max_queue_delay_us`, `gpus`,
    `instance_kind`, and `enable_dynamic_batching` (which applies to every step). `gpus` left unset means
    (0,) for KIND_GPU and KIND_AUTO and () for KIND_CPU; set explicitly with KIND_CPU, it is an error.

    Then:
        execution_accelerator: "tensorrt" or "openvino" for the onnxruntime_onnx platform (`platform` also
            takes the engine names of `ENGINES`, which set it).
        preprocess_name, step_name, postprocess_name: the composing models' names (the ensemble's is
            `ExportConfig.model_name`).
        preprocess, model_step, postprocess: each step's own settings (`ugt_ensemble.config.steps`:
            instances, length buckets, limits, ONNX Runtime threads, `max_batch_tokens`, warm-up,
            exclude-history, queue policy, version policy and more).
        naive_peer, naive_peer_name: also emit the benchmark's naive baseline (one Python model, PyTorch
            eager, per request; needs ugt-ensemble in the server's Python).

    `cpu()`, `with_changes()` and `from_dict()` also take the step settings' former flat names
    (`max_batch_tokens=...`, `exclude_history=...`, `max_queue_size=...`: see `steps.STEP_FIELDS`).
    """

    platform: str = "tensorrt_plan"
    instance_count: int = 2
    preferred_batch_sizes: tuple[int, ...] = (8, 16, 32, 64)
    max_queue_delay_us: int = 100
    gpus: tuple[int, ...] | None = None  # None: DEFAULT_GPUS for GPU kinds, () for KIND_CPU
    instance_kind: str = "KIND_GPU"
    enable_dynamic_batching: bool = True
    execution_accelerator: str | None = None
    preprocess_name: str = "preprocess"
    step_name: str = "ugt_trt"
    postprocess_name: str = "postprocess"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model_step: ModelStepConfig = field(default_factory=ModelStepConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    naive_peer: bool = False
    naive_peer_name: str = "ugt_naive"

    @classmethod
    def cpu(cls, **overrides: Any) -> TritonConfig:
        """Settings for a CPU server: ONNX Runtime inside a Python-backend model step, one instance, no
        GPU, no queue delay (what `build --target-server cpu-wheel` uses); `overrides` as in `with_changes`."""
        own, flat = _split(overrides)
        cpu = dict(
            platform="onnxruntime",
            instance_count=1,
            preferred_batch_sizes=(),
            max_queue_delay_us=0,
            gpus=(),
            instance_kind="KIND_CPU",
        )
        return cls(**{**cpu, **own})._with_step_fields(flat)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TritonConfig:
        """From a build manifest's "triton" record: this shape, or the flat one of older builds."""
        own, flat = _split(data)
        return cls(**own)._with_step_fields(flat)

    def __post_init__(self) -> None:
        self._normalise_platform()
        for name in self.step_names:
            require_model_name(name)
        if len(set(self.step_names)) != len(self.step_names):
            raise ConfigError(f"model names must differ, got {list(self.step_names)}")
        require_positive_int("instance_count", self.instance_count)
        require_non_negative_int("max_queue_delay_us", self.max_queue_delay_us)
        object.__setattr__(
            self, "preferred_batch_sizes", int_tuple("preferred_batch_sizes", self.preferred_batch_sizes)
        )
        object.__setattr__(self, "_gpus_defaulted", self.gpus is None)
        if self.gpus is None:
            object.__setattr__(self, "gpus", () if self.instance_kind == "KIND_CPU" else DEFAULT_GPUS)
        object.__setattr__(self, "gpus", int_tuple("gpus", self.gpus, low=0))
        for attribute, cls in STEP_CONFIGS.items():
            object.__setattr__(self, attribute, as_step_config(cls, getattr(self, attribute)))
        self._check_instances()

    def _normalise_platform(self) -> None:
        if self.platform in ENGINES:
            platform, accelerator = ENGINES[self.platform]
            if self.execution_accelerator not in (None, accelerator):
                raise ConfigError(f"`platform` {self.platform!r} already names accelerator {accelerator!r}")
            object.__setattr__(self, "platform", platform)
            object.__setattr__(self, "execution_accelerator", self.execution_accelerator or accelerator)
        require_one_of("platform", self.platform, (*PLATFORMS, *ENGINES))
        if self.execution_accelerator is not None:
            require_one_of("execution_accelerator", self.execution_accelerator, ("tensorrt", "openvino"))
            if self.platform != "onnxruntime_onnx":
                raise ConfigError("`execution_accelerator` applies to platform onnxruntime_onnx only")

    def _check_instances(self) -> None:
        require_one_of("instance_kind", self.instance_kind, INSTANCE_KINDS)
        if self.platform == "onnxruntime" and self.instance_kind != "KIND_CPU":
            raise ConfigError(
                "platform onnxruntime runs ONNX Runtime on CPU inside the Python backend: set "
                "instance_kind='KIND_CPU' and gpus=() (TritonConfig.cpu() does), or use platform "
                "tensorrt_plan or onnxruntime_onnx on a GPU"
            )
        if self.instance_kind == "KIND_CPU" and self.gpus:
            raise ConfigError(
                f"`gpus` {self.gpus} need instance_kind KIND_GPU or KIND_AUTO; with KIND_CPU leave `gpus` unset"
            )
        if self.platform == "tensorrt_plan" and self.instance_kind == "KIND_CPU":
            raise ConfigError("a TensorRT plan runs on GPU: instance_kind KIND_GPU or KIND_AUTO")

    @property
    def step_names(self) -> tuple[str, ...]:
        """The composing models' names (and the naive peer's)."""
        return (self.preprocess_name, self.step_name, self.postprocess_name, self.naive_peer_name)

    @property
    def engine(self) -> str:
        """The engine name of (platform, accelerator), as the CLI's --engine spells it."""
        return next(name for name, spec in ENGINES.items() if spec == (self.platform, self.execution_accelerator))

    @property
    def python_model_step(self) -> bool:
        """True when the model step is a Python-backend model (the "onnxruntime" engine)."""
        return self.platform == "onnxruntime"

    @property
    def needs_tensorrt_parser(self) -> bool:
        """True when TensorRT will parse the graph (the static check is then fatal)."""
        return self.platform == "tensorrt_plan" or self.execution_accelerator == "tensorrt"

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this platform can run."""
        if self.platform == "tensorrt_plan":
            return PRECISIONS
        return ("fp32", "fp16") if self.execution_accelerator == "tensorrt" else ("fp32",)

    def preferred_sizes_up_to(self, max_batch_size: int) -> tuple[int, ...]:
        """`preferred_batch_sizes` that a model of `max_batch_size` can form."""
        return tuple(size for size in self.preferred_batch_sizes if size <= max_batch_size)

    def with_changes(self, **changes: Any) -> TritonConfig:
        """A copy with `changes`: fields of this class, or step settings by their former flat names
        (unknown names raise ConfigError naming the allowed ones)."""
        own, flat = _split(changes)
        if getattr(self, "_gpus_defaulted", False) and "gpus" not in own:
            own["gpus"] = None  # a default follows the instance kind the changes may set
        return replace(self, **own)._with_step_fields(flat)

    def _with_step_fields(self, flat: dict[str, Any]) -> TritonConfig:
        if not flat:
            return self
        steps = apply_step_fields({name: getattr(self, name) for name in STEP_CONFIGS}, flat)
        keep = {"gpus": None} if getattr(self, "_gpus_defaulted", False) else {}
        return replace(self, **steps, **keep)


def _split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields of TritonConfig, former flat step settings) of `settings`; ConfigError on other names."""
    own_names = {f.name for f in fields(TritonConfig)}
    unknown = sorted(set(settings) - own_names - set(STEP_FIELDS))
    if unknown:
        allowed = ", ".join(sorted(own_names | set(STEP_FIELDS)))
        raise ConfigError(f"unknown TritonConfig field(s) {unknown}; allowed: {allowed}")
    own = {k: v for k, v in settings.items() if k in own_names}
    return own, {k: v for k, v in settings.items() if k not in own_names}
