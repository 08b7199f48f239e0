"""One typed config per composing model: what its config.pbtxt and its adapter need beyond the export's shapes.

`TritonConfig` holds one of each (`preprocess`, `model_step`, `postprocess`) beside its own fields (the
model step's platform, instances, GPUs and batching, and the models' names). `BuildConfig` composes them
with the `ExportConfig` into the typed parameters each Python-backend adapter reads back in `initialize`
(`ugt_ensemble.runtime.parameters`), and `repository.render` writes both into each config.pbtxt.

Settings that were flat `TritonConfig` fields before these configs existed keep their names as aliases
(`STEP_FIELDS`): `TritonConfig.cpu()`, `TritonConfig.with_changes()` and `TritonConfig.from_dict()` (old
build manifests) take them and set the field of the step(s) they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, TypeVar

from ugt_ensemble.config.checks import int_tuple, require_non_negative_int, require_positive_int
from ugt_ensemble.config.export import ExportConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.contract import CATALOG_DIR, NUM_TOKEN_TYPES, ONNX_FILE
from ugt_ensemble.runtime.packing import DEFAULT_BUCKETS, PackingConfig
from ugt_ensemble.runtime.parameters import ModelStepParameters, PostprocessParameters, PreprocessParameters

C = TypeVar("C")


@dataclass(frozen=True)
class QueuePolicy:
    """One step's `dynamic_batching.default_queue_policy` (0: no limit, the default).

    Attributes:
        max_queue_size: most requests waiting in the step's queue; a request that finds it full is
            rejected at once with UNAVAILABLE.
        queue_timeout_us: longest wait in the step's queue before a request is rejected with UNAVAILABLE;
            clients may then set shorter timeouts per request.

    Both are off by default because, measured on tritonserver 2.51, any queue policy turns off the dynamic
    batcher's prefetching and exposes a wake-up delay: p99 at 100 req/s went from 10.5 to 27-35 ms, and
    some requests waited 500 ms (RELIABILITY.md).
    """

    max_queue_size: int = 0
    queue_timeout_us: int = 0

    def __post_init__(self) -> None:
        for name in ("max_queue_size", "queue_timeout_us"):
            require_non_negative_int(name, getattr(self, name))


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocess (Python backend): one JSON HISTORY per request -> the six encoder tensors.

    Attributes:
        instances: its `instance_group` count (KIND_CPU).
        length_buckets: padded history lengths (capped at, and always ending with, max_seq_length).
        max_request_bytes, max_events: limits on one HISTORY document.
        batch_requests: let its dynamic batcher put several requests in one execute(). Off by default: the
            Python backend checks the BYTES tensors of a batch together, so one request with a malformed
            tensor would fail every request batched with it.
        queue: its queue policy.
    """

    instances: int = 1
    length_buckets: tuple[int, ...] = DEFAULT_BUCKETS
    max_request_bytes: int = 1 << 20
    max_events: int = 100_000
    batch_requests: bool = False
    queue: QueuePolicy = field(default_factory=QueuePolicy)

    def __post_init__(self) -> None:
        _check_counts(self, "preprocess", ("instances", "max_request_bytes", "max_events"))
        object.__setattr__(self, "length_buckets", int_tuple("length_buckets", self.length_buckets))
        if not self.length_buckets:
            raise ConfigError("`length_buckets` must hold at least one length")
        _coerce_queue(self)

    def packing(self, max_seq_length: int) -> PackingConfig:
        """How this preprocess pads histories of at most `max_seq_length` events."""
        return PackingConfig(max_seq_length, self.length_buckets)

    def parameters(
        self, export: ExportConfig, exclude_history: bool, rules_in_search: bool, max_rule_list: int = 0
    ) -> PreprocessParameters:
        """What the adapter reads in `initialize` (the rule defaults come from the other steps' configs;
        `max_rule_list` 0: rule lists of any length)."""
        packing = self.packing(export.max_seq_length)
        return PreprocessParameters(
            CATALOG_DIR,
            packing.max_seq_length,
            packing.buckets,
            self.max_request_bytes,
            self.max_events,
            exclude_history,
            rules_in_search,
            max_rule_list,
        )


@dataclass(frozen=True)
class ModelStepConfig:
    """The model step's settings beyond the core ones (which stay `TritonConfig` fields: platform, instances,
    GPUs, instance kind, preferred batch sizes, queue delay).

    Attributes:
        intra_op_threads, allow_spinning: ONNX Runtime threads of the Python-backend model step, and
            whether idle ones spin (faster wake-up, but they take the cores pre/postprocess need).
        memory_arena: ONNX Runtime's CPU memory arena in the Python-backend model step. The arena keeps its
            peak for good; `max_batch_tokens` bounds that peak. Off, every call allocates afresh (measured
            35-50 % slower on 2 cores).
        max_batch_tokens: the Python-backend model step runs at most this many history positions
            (rows x length) per engine call, which bounds its peak memory (measured at 64 histories of
            1024 events: 274 MiB resident at 4096, 3.5 GiB without a bound).
        max_rule_entries: the Python-backend model step runs at most this many rule-list entries (rows x
            the widest `rule_removed_items` / `rule_dead_pairs` list) per engine call, which bounds its peak
            memory; a single row with a longer list runs alone (its width is bounded by
            `BuildConfig.rule_list_bound` and the catalog's size).
        warmup: warm the model step up (batch 1 and max_batch_size, zero data): inside initialize for the
            Python-backend step, as `model_warmup` samples for native engines.
        cuda_graphs: `optimization.cuda.graphs` for the TensorRT plan.
        response_cache: `response_cache.enable` (start tritonserver with --cache-config).
        version_policy: "latest:N", "all" or "specific:1,2" (Triton's `version_policy`).
        rules_in_search: the model declares the rule inputs (a `ConstrainedRecommender` does): the rules of each
            request go into its search. `build` sets it from the model's signature.
        accelerator_workspace_mib: `max_workspace_size_bytes` of the TensorRT execution accelerator.
        queue: its queue policy.
    """

    intra_op_threads: int = 2
    allow_spinning: bool = False
    memory_arena: bool = True
    max_batch_tokens: int = 4096
    max_rule_entries: int = 1 << 16
    warmup: bool = True
    cuda_graphs: bool = False
    response_cache: bool = False
    version_policy: str = "latest:1"
    rules_in_search: bool = True
    accelerator_workspace_mib: int = 1024
    queue: QueuePolicy = field(default_factory=QueuePolicy)

    def __post_init__(self) -> None:
        counts = ("intra_op_threads", "max_batch_tokens", "max_rule_entries", "accelerator_workspace_mib")
        _check_counts(self, "model_step", counts)
        parse_version_policy(self.version_policy)
        _coerce_queue(self)

    def warmup_length(self, packing: PackingConfig) -> int:
        """The history length of the warm-up (the first length bucket of 128 or more; 0: no warm-up)."""
        if not self.warmup:
            return 0
        return next((b for b in packing.buckets if b >= 128), packing.buckets[-1])

    def parameters(
        self, engine: str, export: ExportConfig, packing: PackingConfig, max_rule_list: int
    ) -> ModelStepParameters:
        """What the Python-backend adapter reads in `initialize` (`max_rule_list`: the most items one request's
        rules remove, `BuildConfig.rule_list_bound`)."""
        return ModelStepParameters(
            engine=engine,
            model_file=ONNX_FILE,
            catalog_file=CATALOG_DIR if self.rules_in_search else "",
            intra_op_threads=self.intra_op_threads,
            allow_spinning=self.allow_spinning,
            memory_arena=self.memory_arena,
            max_batch_tokens=self.max_batch_tokens,
            max_rule_list=max_rule_list,
            max_rule_entries=self.max_rule_entries,
            max_seq_length=export.max_seq_length,
            codebook_sizes=export.codebook_sizes,
            num_token_types=NUM_TOKEN_TYPES,
            num_recommendations=export.num_recommendations,
            warmup_length=self.warmup_length(packing),
        )


@dataclass(frozen=True)
class PostprocessConfig:
    """Postprocess (Python backend): semantic-ID codes -> catalog item ids and scores.

    Attributes:
        instances: its `instance_group` count (KIND_CPU).
        exclude_history: by default, never recommend the items of the request's history (a request may say
            otherwise: "exclude_history" in its HISTORY document). The rule is applied inside the model's search
            (README, "Business rules"); postprocess checks every answer against the request's rules.
        queue: its queue policy.
    """

    instances: int = 1
    exclude_history: bool = False
    queue: QueuePolicy = field(default_factory=QueuePolicy)

    def __post_init__(self) -> None:
        _check_counts(self, "postprocess", ("instances",))
        _coerce_queue(self)

    def parameters(self, export: ExportConfig, max_rule_list: int) -> PostprocessParameters:
        """What the adapter reads in `initialize` (`max_rule_list`: `BuildConfig.rule_list_bound`)."""
        return PostprocessParameters(CATALOG_DIR, export.num_recommendations, max_rule_list)


#: The `TritonConfig` attribute of each step config.
STEP_CONFIGS: dict[str, type] = {
    "preprocess": PreprocessConfig,
    "model_step": ModelStepConfig,
    "postprocess": PostprocessConfig,
}
#: Former flat `TritonConfig` names -> (the steps they set, the field there; "queue.x" is a QueuePolicy field).
STEP_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "preprocess_instances": (("preprocess",), "instances"),
    "length_buckets": (("preprocess",), "length_buckets"),
    "max_request_bytes": (("preprocess",), "max_request_bytes"),
    "max_events": (("preprocess",), "max_events"),
    "preprocess_batch_requests": (("preprocess",), "batch_requests"),
    **{
        name: (("model_step",), name)
        for name in (
            "intra_op_threads", "allow_spinning", "max_batch_tokens", "warmup", "cuda_graphs",
            "response_cache", "version_policy", "accelerator_workspace_mib", "rules_in_search",
        )
    },  # fmt: skip
    "ort_memory_arena": (("model_step",), "memory_arena"),
    "postprocess_instances": (("postprocess",), "instances"),
    "exclude_history": (("postprocess",), "exclude_history"),
    "max_queue_size": (tuple(STEP_CONFIGS), "queue.max_queue_size"),
    "queue_timeout_us": (tuple(STEP_CONFIGS), "queue.queue_timeout_us"),
}


def apply_step_fields(steps: Mapping[str, Any], flat: Mapping[str, Any]) -> dict[str, Any]:
    """`steps` (attribute -> step config) with the former flat settings `flat` set (see `STEP_FIELDS`)."""
    updated = dict(steps)
    for name, value in flat.items():
        owners, path = STEP_FIELDS[name]
        for owner in owners:
            updated[owner] = _set(as_step_config(STEP_CONFIGS[owner], updated[owner]), path, value)
    return updated


def as_step_config(cls: type[C], value: Any) -> C:
    """`value` if it is a `cls` already, else `cls` from a mapping of its fields (a manifest's JSON)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a {cls.__name__} or a mapping of its fields, got {type(value).__name__}")
    unknown = sorted(set(value) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}")
    return cls(**value)


def parse_version_policy(policy: str) -> tuple[str, tuple[int, ...]]:
    """("latest", (N,)), ("all", ()) or ("specific", (v, ...)) from "latest:N", "all", "specific:v,..."."""
    kind, _, values = str(policy).partition(":")
    try:
        numbers = tuple(int(v) for v in values.split(",") if v.strip())
    except ValueError:
        numbers = ()
    ok = (kind == "all" and not values) or (kind in ("latest", "specific") and numbers and min(numbers) >= 1)
    if not ok:
        raise ConfigError(f"`version_policy` {policy!r}: use latest:N, all, or specific:1,2")
    return kind, numbers


def _set(config: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    return replace(config, **{head: _set(getattr(config, head), rest, value) if rest else value})


def _check_counts(config: object, step: str, names: tuple[str, ...]) -> None:
    for name in names:
        require_positive_int(f"{step}.{name}", getattr(config, name))


def _coerce_queue(config: object) -> None:
    object.__setattr__(config, "queue", as_step_config(QueuePolicy, config.queue))
