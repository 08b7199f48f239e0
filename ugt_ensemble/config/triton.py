"""`TritonConfig`: how the repository serves (the seeds' field names and defaults, then ours)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ugt_ensemble.config.checks import (
    int_tuple,
    require_model_name,
    require_non_negative_int,
    require_one_of,
    require_positive_int,
)
from ugt_ensemble.config.export import PRECISIONS
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.packing import DEFAULT_BUCKETS

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
#: The seeds' `gpus` for GPU kinds when none are given.
DEFAULT_GPUS: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class TritonConfig:
    """The emitted model repository. The first fields are the seeds' (002 §3.1), with their defaults:
    a TensorRT model step on GPU 0. `TritonConfig.cpu()` gives the CPU settings.

    The seeds' fields concern the model step: `platform`, `instance_count` (instances per GPU),
    `preferred_batch_sizes` (sizes above max_batch_size are left out), `max_queue_delay_us`,
    `gpus`, `instance_kind`, `enable_dynamic_batching`. `gpus` left unset means (0,) for KIND_GPU and
    KIND_AUTO and () for KIND_CPU; set explicitly with KIND_CPU, it is an error.

    Ours:
        execution_accelerator: "tensorrt" or "openvino" for the onnxruntime_onnx platform.
        preprocess_name, step_name, postprocess_name: the composing models' names (the ensemble's is
            `ExportConfig.model_name`).
        preprocess_instances, postprocess_instances: their `instance_group` counts (KIND_CPU).
        intra_op_threads, allow_spinning: ONNX Runtime threads of the Python-backend model step, and
            whether idle ones spin (faster wake-up, but they take the cores pre/postprocess need).
        length_buckets: padded history lengths emitted by preprocess.
        exclude_history: drop items the user already interacted with from the recommendations.
        max_request_bytes, max_events: limits on one HISTORY document.
        max_queue_size: most requests waiting in each step's queue (0: unbounded, the default); a
            request that finds the queue full is rejected at once with UNAVAILABLE.
        queue_timeout_us: longest wait in each step's queue before a request is rejected with
            UNAVAILABLE (0: no limit, the default); clients may then set shorter timeouts per request.
            Both are off by default because, measured on tritonserver 2.51, any queue policy turns off
            the dynamic batcher's prefetching and exposes a wake-up delay: p99 at 100 req/s went from
            10.5 to 27-35 ms, and some requests waited 500 ms (RELIABILITY.md).
        preprocess_batch_requests: let preprocess's dynamic batcher put several requests in one
            execute(). Off by default: the Python backend checks the BYTES tensors of a batch together,
            so one request with a malformed tensor would fail every request batched with it.
        ort_memory_arena: ONNX Runtime's CPU memory arena in the Python-backend model step. The arena
            keeps its peak for good; `max_batch_tokens` bounds that peak. Off, every call allocates
            afresh (measured 35-50 % slower on 2 cores).
        max_batch_tokens: the Python-backend model step runs at most this many history positions
            (rows x length) per engine call, which bounds its peak memory (measured at 64 histories of
            1024 events: 274 MiB resident at 4096, 3.5 GiB without a bound).
        naive_peer, naive_peer_name: also emit the benchmark's naive baseline (one Python model,
            PyTorch eager, per request; needs ugt-ensemble in the server's Python).
        cuda_graphs: `optimization.cuda.graphs` for the TensorRT plan.
        warmup: warm the model step up (batch 1 and max_batch_size, zero data): inside initialize for the
            Python-backend step, as `model_warmup` samples for native engines.
        response_cache: `response_cache.enable` on the model step (start tritonserver with --cache-config).
        version_policy: "latest:N", "all" or "specific:1,2" (Triton's `version_policy`).
        accelerator_workspace_mib: `max_workspace_size_bytes` of the TensorRT execution accelerator.
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
    preprocess_instances: int = 1
    postprocess_instances: int = 1
    intra_op_threads: int = 2
    allow_spinning: bool = False
    length_buckets: tuple[int, ...] = DEFAULT_BUCKETS
    exclude_history: bool = False
    max_request_bytes: int = 1 << 20
    max_events: int = 100_000
    max_queue_size: int = 0
    queue_timeout_us: int = 0
    preprocess_batch_requests: bool = False
    ort_memory_arena: bool = True
    max_batch_tokens: int = 4096
    naive_peer: bool = False
    naive_peer_name: str = "ugt_naive"
    cuda_graphs: bool = False
    warmup: bool = True
    response_cache: bool = False
    version_policy: str = "latest:1"
    accelerator_workspace_mib: int = 1024

    @classmethod
    def cpu(cls, **overrides: Any) -> TritonConfig:
        """Settings for a CPU server: ONNX Runtime inside a Python-backend model step, one instance, no
        GPU, no queue delay (what `build --target-server cpu-wheel` uses)."""
        cpu = dict(
            platform="onnxruntime",
            instance_count=1,
            preferred_batch_sizes=(),
            max_queue_delay_us=0,
            gpus=(),
            instance_kind="KIND_CPU",
        )
        return cls(**{**cpu, **overrides})

    def __post_init__(self) -> None:
        self._normalise_platform()
        for name in self.step_names:
            require_model_name(name)
        if len(set(self.step_names)) != len(self.step_names):
            raise ConfigError(f"model names must differ, got {list(self.step_names)}")
        counts = ("instance_count", "preprocess_instances", "postprocess_instances", "intra_op_threads")
        for name in (*counts, "max_request_bytes", "max_events", "max_batch_tokens", "accelerator_workspace_mib"):
            require_positive_int(name, getattr(self, name))
        for name in ("max_queue_delay_us", "max_queue_size", "queue_timeout_us"):
            require_non_negative_int(name, getattr(self, name))
        object.__setattr__(
            self, "preferred_batch_sizes", int_tuple("preferred_batch_sizes", self.preferred_batch_sizes)
        )
        object.__setattr__(self, "length_buckets", int_tuple("length_buckets", self.length_buckets))
        object.__setattr__(self, "_gpus_defaulted", self.gpus is None)
        if self.gpus is None:
            object.__setattr__(self, "gpus", () if self.instance_kind == "KIND_CPU" else DEFAULT_GPUS)
        object.__setattr__(self, "gpus", int_tuple("gpus", self.gpus, low=0))
        if not self.length_buckets:
            raise ConfigError("`length_buckets` must hold at least one length")
        self._check_instances()
        parse_version_policy(self.version_policy)

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
        """A copy with `changes` (unknown names raise ConfigError naming the allowed ones)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown TritonConfig field(s) {unknown}")
        if getattr(self, "_gpus_defaulted", False) and "gpus" not in changes:
            changes["gpus"] = None  # a default follows the instance kind the changes may set
        return replace(self, **changes)


def parse_version_policy(policy: str) -> tuple[str, tuple[int, ...]]:
    """("latest", (N,)), ("all", ()) or ("specific", (v, ...)) from "latest:N", "all", "specific:v,..."."""
    kind, _, values = policy.partition(":")
    try:
        numbers = tuple(int(v) for v in values.split(",") if v.strip())
    except ValueError:
        numbers = ()
    ok = (kind == "all" and not values) or (kind in ("latest", "specific") and numbers and min(numbers) >= 1)
    if not ok:
        raise ConfigError(f"`version_policy` {policy!r}: use latest:N, all, or specific:1,2")
    return kind, numbers
