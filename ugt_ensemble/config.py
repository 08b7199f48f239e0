"""Typed configuration of a build: what to export and how to serve it. Checked on construction.

`BuildConfig` bundles a `UGTConfig` (the model), an `ExportConfig` (ONNX/engine) and a
`TritonConfig` (the emitted repository). The CLI maps its flags into these objects once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.model.config import UGTConfig, require_positive_int
from ugt_ensemble.runtime.errors import clip
from ugt_ensemble.runtime.packing import DEFAULT_BUCKETS, PackingConfig

#: Model-step engines:
#: - "onnxruntime": ONNX Runtime inside a Python-backend model (any tritonserver, including the CPU
#:   build from the nvidia-pytriton wheel); the default.
#: - "tensorrt": a TensorRT engine, platform "tensorrt_plan" (needs TensorRT and a GPU to build).
#: - "onnxruntime-backend": Triton's onnxruntime backend ("onnxruntime_onnx"), no accelerator.
#: - "onnxruntime-trt": the same with the TensorRT execution accelerator (GPU).
#: - "onnxruntime-openvino": the same with the OpenVINO execution accelerator (CPU).
ENGINES: tuple[str, ...] = ("onnxruntime", "tensorrt", "onnxruntime-backend", "onnxruntime-trt", "onnxruntime-openvino")
PYTHON_ENGINES: tuple[str, ...] = ("onnxruntime",)
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: Precisions each engine accepts.
ENGINE_PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("fp32",),
    "tensorrt": PRECISIONS,
    "onnxruntime-backend": ("fp32",),
    "onnxruntime-trt": ("fp32", "fp16"),
    "onnxruntime-openvino": ("fp32",),
}
DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "ugt-ensemble" / "tensorrt-timing.cache"
#: Allowed |score difference| of a TensorRT engine against PyTorch, per precision (codes must match
#: up to ties within it). Reduced precision moves scores; the decoder stays fp32 to keep rankings.
ENGINE_SCORE_ATOL: dict[str, float] = {"fp32": 1e-3, "fp16": 5e-2, "int8": 0.25}
#: (batch, sequence) shapes the exported model is checked on, from the smallest to both maxima.
DEFAULT_VALIDATION_SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (3, 17), (8, 256), (64, 100), (2, 1024))


@dataclass(frozen=True)
class ExportConfig:
    """ONNX export and engine settings.

    Attributes:
        engine: how the model step runs (see `ENGINES`).
        precision: engine precision; ONNX Runtime on CPU runs fp32.
        min/opt/max_batch_size, min/opt/max_seq_length: the dynamic shape range of the exported
            graph (opt values are the TensorRT profile's optimum).
        validation_shapes: (batch, sequence) shapes on which the exported model is checked
            against PyTorch after export.
        score_atol: largest allowed |score difference| in that check; codes must be identical
            (entries whose scores tie within `score_atol` may swap places).
        workspace_mib: TensorRT builder workspace limit.
        timing_cache: TensorRT timing cache, reused and updated by every build (None: no cache).
        calibration_histories: INT8 calibration data, one JSON history per line (None: synthetic).
        calibration_batches, calibration_batch_size: how much INT8 calibration data.
        engine_score_atol: the TensorRT engine's tolerance against PyTorch (None: `ENGINE_SCORE_ATOL`).

    Unset opt values default to min(32, max_batch_size) and min(512, max_seq_length); unset
    `validation_shapes` to `DEFAULT_VALIDATION_SHAPES` clipped to the export range.
    """

    engine: str = "onnxruntime"
    precision: str = "fp32"
    min_batch_size: int = 1
    opt_batch_size: int | None = None
    max_batch_size: int = 64
    min_seq_length: int = 1
    opt_seq_length: int | None = None
    max_seq_length: int = 1024
    validation_shapes: tuple[tuple[int, int], ...] | None = None
    score_atol: float = 1e-4
    workspace_mib: int = 4096
    timing_cache: Path | None = DEFAULT_TIMING_CACHE
    calibration_histories: Path | None = None
    calibration_batches: int = 16
    calibration_batch_size: int = 32
    engine_score_atol: float | None = None

    def __post_init__(self) -> None:
        _one_of("engine", self.engine, ENGINES)
        _one_of("precision", self.precision, PRECISIONS)
        if self.precision not in ENGINE_PRECISIONS[self.engine]:
            allowed = ", ".join(ENGINE_PRECISIONS[self.engine])
            raise ConfigError(
                f"`precision` {self.precision} is not available with engine {self.engine} (allowed: {allowed})"
            )
        for name in ("workspace_mib", "calibration_batches", "calibration_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.opt_batch_size is None:
            object.__setattr__(self, "opt_batch_size", max(self.min_batch_size, min(32, self.max_batch_size)))
        if self.opt_seq_length is None:
            object.__setattr__(self, "opt_seq_length", max(self.min_seq_length, min(512, self.max_seq_length)))
        _ordered("batch_size", self.min_batch_size, self.opt_batch_size, self.max_batch_size)
        _ordered("seq_length", self.min_seq_length, self.opt_seq_length, self.max_seq_length)
        if self.validation_shapes is None:
            object.__setattr__(self, "validation_shapes", self._clipped_default_shapes())
        object.__setattr__(self, "validation_shapes", tuple(tuple(s) for s in self.validation_shapes))
        for batch, length in self.validation_shapes:
            if not (
                self.min_batch_size <= batch <= self.max_batch_size
                and self.min_seq_length <= length <= self.max_seq_length
            ):
                raise ConfigError(f"`validation_shapes` entry {(batch, length)} is outside the export range")
        if not self.score_atol > 0:
            raise ConfigError(f"`score_atol` must be > 0, got {self.score_atol}")

    @property
    def engine_atol(self) -> float:
        """The TensorRT engine's score tolerance against PyTorch."""
        return self.engine_score_atol if self.engine_score_atol is not None else ENGINE_SCORE_ATOL[self.precision]

    @property
    def needs_tensorrt_parser(self) -> bool:
        """True when TensorRT will parse the graph (the static check is then fatal)."""
        return self.engine in ("tensorrt", "onnxruntime-trt")

    def _clipped_default_shapes(self) -> tuple[tuple[int, int], ...]:
        clip = lambda v, lo, hi: max(lo, min(v, hi))  # noqa: E731
        shapes = {
            (clip(b, self.min_batch_size, self.max_batch_size), clip(t, self.min_seq_length, self.max_seq_length))
            for b, t in DEFAULT_VALIDATION_SHAPES
        }
        return tuple(sorted(shapes))


@dataclass(frozen=True)
class TritonConfig:
    """The emitted model repository: names, batching, instances and request limits.

    Attributes:
        ensemble_name, preprocess_name, model_name, postprocess_name: model names in the repository.
        max_batch_size: every model's max_batch_size (Triton's `max_batch_size`).
        max_queue_delay_us: dynamic batcher's `max_queue_delay_microseconds` (all steps).
        preferred_batch_sizes: dynamic batcher's `preferred_batch_size` (model step).
        preprocess_instances, model_instances, postprocess_instances: `instance_group` counts.
        intra_op_threads: ONNX Runtime intra-op threads per model-step instance.
        allow_spinning: let ONNX Runtime's idle worker threads spin-wait (faster wake-up, but they
            take the CPU that preprocess and postprocess need).
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
            execute(). Off by default: the Python backend checks the BYTES tensors of a batch
            together, so one request with a malformed tensor would fail every request batched with it.
        ort_memory_arena: ONNX Runtime's CPU memory arena in the Python-backend model step. The arena
            keeps its peak for good; `max_batch_tokens` bounds that peak. Off, every call allocates
            afresh (measured 35-50 % slower on 2 cores).
        max_batch_tokens: the Python-backend model step runs at most this many history positions
            (rows x length) per engine call, which bounds its peak memory (measured under overload at
            concurrency 64: 290 MiB resident at 4096, 890 MiB without a bound).
        naive_peer: also emit `naive_peer_name`, the benchmark's naive baseline (one Python model,
            PyTorch eager, per request, no dynamic batching; needs ugt-ensemble in the server's Python).
        instance_kind: model-step `instance_group.kind`: KIND_CPU, KIND_GPU or KIND_AUTO (default:
            KIND_CPU for the Python-backend engine, KIND_GPU for TensorRT and the TensorRT accelerator).
        gpus: model-step `instance_group.gpus` (empty: all).
        cuda_graphs: `optimization.cuda.graphs` for the TensorRT plan.
        warmup: model-step `model_warmup` samples (batch 1 and max_batch_size, zero data).
        response_cache: `response_cache.enable` on the model step (start tritonserver with --cache-config).
        version_policy: "latest:N", "all" or "specific:1,2" (Triton's `version_policy`).
        accelerator_workspace_mib: `max_workspace_size_bytes` of the TensorRT execution accelerator.
    """

    ensemble_name: str = "ugt_recommend"
    preprocess_name: str = "preprocess"
    model_name: str = "ugt_trt"
    postprocess_name: str = "postprocess"
    max_batch_size: int = 64
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    preprocess_instances: int = 1
    model_instances: int = 1
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
    instance_kind: str | None = None
    gpus: tuple[int, ...] = ()
    cuda_graphs: bool = False
    warmup: bool = True
    response_cache: bool = False
    version_policy: str = "latest:1"
    accelerator_workspace_mib: int = 1024

    def __post_init__(self) -> None:
        names = [self.ensemble_name, self.preprocess_name, self.model_name, self.postprocess_name, self.naive_peer_name]
        for name in names:
            require_model_name(name)
        if len(set(names)) != len(names):
            raise ConfigError(f"model names must differ, got {names}")
        for name in (
            "max_batch_size",
            "preprocess_instances",
            "model_instances",
            "postprocess_instances",
            "intra_op_threads",
            "max_request_bytes",
            "max_events",
            "max_batch_tokens",
        ):
            require_positive_int(name, getattr(self, name))
        for name in ("max_queue_size", "queue_timeout_us"):
            if (
                isinstance(getattr(self, name), bool)
                or not isinstance(getattr(self, name), int)
                or getattr(self, name) < 0
            ):
                raise ConfigError(f"`{name}` must be an int >= 0 (0: no limit), got {getattr(self, name)!r}")
        if self.max_queue_delay_us < 0:
            raise ConfigError(f"`max_queue_delay_us` must be >= 0, got {self.max_queue_delay_us}")
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if bad:
            raise ConfigError(f"`preferred_batch_sizes` {bad} must lie in [1, max_batch_size={self.max_batch_size}]")
        if not self.length_buckets or min(self.length_buckets) < 1:
            raise ConfigError(f"`length_buckets` must be positive ints, got {self.length_buckets}")
        if self.instance_kind not in (None, "KIND_CPU", "KIND_GPU", "KIND_AUTO"):
            raise ConfigError(f"`instance_kind` must be KIND_CPU, KIND_GPU or KIND_AUTO, got {self.instance_kind!r}")
        if any(g < 0 for g in self.gpus):
            raise ConfigError(f"`gpus` must be GPU indices >= 0, got {self.gpus}")
        parse_version_policy(self.version_policy)

    def model_names(self) -> list[str]:
        """The models a build with these settings writes."""
        names = [self.ensemble_name, self.preprocess_name, self.model_name, self.postprocess_name]
        return names + ([self.naive_peer_name] if self.naive_peer else [])

    def model_instance_kind(self, engine: str) -> str:
        """The model step's instance kind for `engine` (explicit, else by engine)."""
        return self.instance_kind or ("KIND_GPU" if engine in ("tensorrt", "onnxruntime-trt") else "KIND_CPU")


#: Model names: what Triton, file systems, URLs and Kubernetes labels all accept.
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_MODEL_NAME = 64


def require_model_name(name: object) -> str:
    """`name` if it is a valid model name, else ConfigError saying what is allowed."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name) or len(name) > MAX_MODEL_NAME:
        shown = clip(repr(name), 80)
        raise ConfigError(
            f"model name {shown} must be 1-{MAX_MODEL_NAME} ASCII characters from [A-Za-z0-9_.-], "
            "not starting with '.' or '-'"
        )
    return name


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


@dataclass(frozen=True)
class BuildConfig:
    """Everything `build` needs.

    Attributes:
        output_dir: the model repository to write.
        model: the model's architecture; None means the checkpoint's own config, or the defaults.
        catalog_path: CSV/Parquet catalog; None means a synthetic catalog of `synthetic_items`.
        checkpoint: weights to load; None means a seeded initialisation (`seed`).
        onnx_path: use this exported model instead of exporting again (it is still validated).
    """

    output_dir: Path = Path("ensemble")
    model: UGTConfig | None = None
    export: ExportConfig = field(default_factory=ExportConfig)
    triton: TritonConfig = field(default_factory=TritonConfig)
    catalog_path: Path | None = None
    synthetic_items: int = 10_000
    checkpoint: Path | None = None
    onnx_path: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.synthetic_items < 1:
            raise ConfigError(f"`synthetic_items` must be >= 1, got {self.synthetic_items}")
        if self.triton.max_batch_size > self.export.max_batch_size:
            raise ConfigError(
                f"Triton `max_batch_size` ({self.triton.max_batch_size}) exceeds the export range "
                f"(max {self.export.max_batch_size})"
            )

    def check_model(self, model: UGTConfig) -> None:
        """Raise `ConfigError` if the export range does not fit `model` (known once it is loaded)."""
        if self.export.max_seq_length > model.max_seq_length:
            raise ConfigError(
                f"export `max_seq_length` ({self.export.max_seq_length}) exceeds the model's "
                f"`max_seq_length` ({model.max_seq_length})"
            )

    @property
    def packing(self) -> PackingConfig:
        """How preprocess pads histories (shared by the client and the reference pipeline)."""
        return PackingConfig(self.export.max_seq_length, self.triton.length_buckets)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"`{name}` must be one of {', '.join(allowed)}; got {value!r}")


def _ordered(name: str, low: int, opt: int, high: int) -> None:
    if not 1 <= low <= opt <= high:
        raise ConfigError(f"need 1 <= min_{name} <= opt_{name} <= max_{name}, got {low}, {opt}, {high}")
