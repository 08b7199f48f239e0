"""How much `/dev/shm` a repository's Python-backend models need, computed from their configs.

Triton's Python backend runs each model instance in a stub process and passes every request's input
tensors and every response's output tensors through one shared-memory region per instance under
`/dev/shm`. A region starts at `shm-default-byte-size` (1 MiB) and grows in 1 MiB steps
(`shm-growth-byte-size`) up to what the largest execute() needs; when /dev/shm is full, the request
fails (and a stub may fail to start). Docker and Kubernetes give a container 64 MiB by default.

Per Python-backend model, with its `instance_group` count `n`, `max_batch_size` `B` and the tensors of
its config (a variable dim counts as the longest history, `max_seq_length`; a TYPE_STRING element as
the largest HISTORY document preprocess accepts, `max_request_bytes`, plus its 4-byte length prefix):

    need = n * (1 MiB + B * (bytes of one row of every input + every output))

The size asked for is the sum over the models times `HEADROOM` (the next batch's inputs are copied in
while the last responses are still being read, and grown regions are not compacted), rounded up to
64 MiB, and never below `FLOOR_BYTES`. Native models (TensorRT, onnxruntime backend) and the ensemble
use no shared memory.

The bundle that preprocess sends a Python-backend model step (`runtime.tensor_bundle`) counts as the step's
other inputs together, plus its header and padding; a step that takes the bundle counts it instead of those
inputs (a request sends one or the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from tritonclient.grpc import model_config_pb2 as mc

from ugt_ensemble.runtime.tensor_bundle import BUNDLE, header_bytes

MIB = 1 << 20
#: Triton's default first region per Python-backend instance (shm-default-byte-size).
STUB_REGION_BYTES = 1 * MIB
#: Factor over the computed need (in-flight overlap, fragmentation of grown regions).
HEADROOM = 2.0
#: The least size asked for: a few stubs with small tensors still get room to grow.
FLOOR_BYTES = 256 * MIB
#: Sizes are rounded up to a multiple of this.
ROUND_BYTES = 64 * MIB
#: Bytes per element of each Triton data type; TYPE_STRING is sized separately.
DTYPE_BYTES = {
    mc.TYPE_BOOL: 1, mc.TYPE_UINT8: 1, mc.TYPE_INT8: 1, mc.TYPE_UINT16: 2, mc.TYPE_INT16: 2, mc.TYPE_FP16: 2,
    mc.TYPE_BF16: 2, mc.TYPE_UINT32: 4, mc.TYPE_INT32: 4, mc.TYPE_FP32: 4, mc.TYPE_UINT64: 8, mc.TYPE_INT64: 8,
    mc.TYPE_FP64: 8,
}  # fmt: skip
STRING_PREFIX_BYTES = 4


@dataclass(frozen=True)
class ModelShm:
    """One Python-backend model's share: `instances` stubs, each holding one batch of `row_bytes` rows."""

    name: str
    instances: int
    batch: int
    row_bytes: int

    @property
    def need_bytes(self) -> int:
        return self.instances * (STUB_REGION_BYTES + self.batch * self.row_bytes)


@dataclass(frozen=True)
class ShmEstimate:
    """The repository's shared-memory need and the size to give `/dev/shm`."""

    models: tuple[ModelShm, ...]
    max_seq_length: int
    string_bytes: int

    @property
    def need_bytes(self) -> int:
        return sum(m.need_bytes for m in self.models)

    @property
    def size_bytes(self) -> int:
        padded = math.ceil(self.need_bytes * HEADROOM / ROUND_BYTES) * ROUND_BYTES
        return max(FLOOR_BYTES, padded)

    @property
    def size_mib(self) -> int:
        return self.size_bytes // MIB

    @property
    def quantity(self) -> str:
        """The size as a Kubernetes quantity, e.g. "256Mi"."""
        return f"{self.size_mib}Mi"

    def describe(self) -> list[str]:
        """One line per Python-backend model and one for the total (used in comments and the CLI)."""
        lines = [
            f"{m.name}: {m.instances} instance(s) x (1 MiB + batch {m.batch} x {m.row_bytes} B) = "
            f"{m.need_bytes / MIB:.1f} MiB"
            for m in self.models
        ]
        total = f"{self.need_bytes / MIB:.1f} MiB"
        return lines + [f"need {total} x {HEADROOM:g} headroom, rounded to 64 MiB, floor 256 MiB: {self.quantity}"]


def estimate_shm(configs: Mapping[str, mc.ModelConfig], max_seq_length: int, string_bytes: int) -> ShmEstimate:
    """The estimate for the Python-backend models among `configs` (see the module docstring)."""
    bundle = bundle_bytes(configs.values(), max_seq_length)
    models = tuple(
        ModelShm(name, instance_count(c), max(c.max_batch_size, 1), row_bytes(c, max_seq_length, string_bytes, bundle))
        for name, c in sorted(configs.items())
        if c.backend == "python"
    )
    return ShmEstimate(models, max_seq_length, string_bytes)


def bundle_bytes(configs: Iterable[mc.ModelConfig], max_seq_length: int) -> int:
    """Bytes of one row of the bundle: the other inputs of the model that takes it, its header and padding."""
    for config in configs:
        names = [tensor.name for tensor in config.input]
        if BUNDLE in names:
            arrays = [t for t in config.input if t.name != BUNDLE]
            return header_bytes(len(arrays)) + 7 * len(arrays) + _tensors_bytes(arrays, max_seq_length, 0)
    return 0


def instance_count(config: mc.ModelConfig) -> int:
    """Instances Triton creates for a model: each group's count, per listed GPU for KIND_GPU groups."""
    if not config.instance_group:
        return 1
    total = 0
    for group in config.instance_group:
        per_device = group.count or 1
        devices = len(group.gpus) if group.kind == mc.ModelInstanceGroup.KIND_GPU and group.gpus else 1
        total += per_device * devices
    return total


def row_bytes(config: mc.ModelConfig, max_seq_length: int, string_bytes: int, bundle: int = 0) -> int:
    """Bytes of one batch row of every input and output of `config` (`bundle`: the bundle's, see the module
    docstring)."""
    inputs = [t for t in config.input if t.name == BUNDLE] or list(config.input)
    total = 0
    for tensor in (*inputs, *config.output):
        if tensor.name == BUNDLE:
            total += bundle
        else:
            total += _tensors_bytes([tensor], max_seq_length, string_bytes)
    return total


def _tensors_bytes(tensors: Iterable, max_seq_length: int, string_bytes: int) -> int:
    total = 0
    for tensor in tensors:
        elements = math.prod(max_seq_length if d < 0 else d for d in tensor.dims)
        if tensor.data_type == mc.TYPE_STRING:
            total += elements * (string_bytes + STRING_PREFIX_BYTES)
        else:
            total += elements * DTYPE_BYTES.get(tensor.data_type, 8)
    return total
