"""Everything about a TensorRT build that can be decided without TensorRT or a GPU.

The optimisation profile, the builder flags of each precision, the layers kept in fp32, the INT8
calibration batches and the metadata written beside `model.plan` are plain Python here, so they
are tested on any machine; `tensorrt_build` only turns them into TensorRT calls.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import InputFileError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS
from ugt_ensemble.runtime.history import HistoryError, parse_history
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories

#: Builder flags (names of `tensorrt.BuilderFlag`) per precision. INT8 keeps an FP16 fallback for
#: layers without INT8 kernels; precision constraints keep the decoder in fp32 (see `fp32_node_names`).
PRECISION_FLAGS: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("FP16", "OBEY_PRECISION_CONSTRAINTS"),
    "int8": ("INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"),
}
#: Module scope of the nodes that may run in reduced precision: the encoder (`ConstrainedRecommender.encoder`).
#: Everything else (the scorers, log-sum-exp and top-k of the beam search) decides the ranking, is cheap
#: next to the encoder, and stays fp32. A model step without an `encoder` module stays fp32 throughout.
REDUCED_SCOPE = "encoder"


@dataclass(frozen=True)
class ProfileShapes:
    """One optimisation profile: (batch, sequence) at min / opt / max, the same for all six inputs."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    @classmethod
    def from_export(cls, config: ExportConfig) -> ProfileShapes:
        return cls(
            (config.min_batch_size, config.min_seq_length),
            (int(config.opt_batch_size), int(config.opt_seq_length)),  # type: ignore[arg-type]
            (config.max_batch_size, config.max_seq_length),
        )

    def inputs(self) -> dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
        """input name -> (min, opt, max) shape, as `IOptimizationProfile.set_shape` takes them."""
        return {name: (self.min, self.opt, self.max) for name in ENCODER_INPUTS}


def fp32_node_names(model: str | Path | onnx.ModelProto, reduced_scope: str = REDUCED_SCOPE) -> set[str]:
    """Names of the ONNX nodes outside module `reduced_scope` (from the dynamo exporter's name-scope
    metadata): what stays fp32 in a reduced-precision engine."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    names = set()
    for node in proto.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        try:
            scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        except (ValueError, SyntaxError):
            continue
        if reduced_scope not in scopes and node.name:
            names.add(node.name)
    return names


def int8_calibration(index: CatalogIndex, config: ExportConfig, seed: int = 0) -> Iterator | None:
    """The calibration batches an int8 build of `config` needs (None for other precisions)."""
    if config.precision != "int8":
        return None
    length = int(config.opt_seq_length)  # type: ignore[arg-type]
    return calibration_batches(
        index, config.calibration_batch_size, length, config.calibration_batches, config.calibration_histories, seed
    )


def calibration_batches(
    index: CatalogIndex,
    batch_size: int,
    seq_length: int,
    num_batches: int,
    histories_file: str | Path | None = None,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """INT8 calibration data: packed (batch_size, seq_length) encoder tensors.

    From `histories_file` (one JSON history per line; malformed lines are an error naming the line)
    when given, else synthetic histories over the catalog. Yields at most `num_batches` batches.
    """
    if histories_file is None:
        rng = np.random.default_rng(seed)
        for _ in range(num_batches):
            yield random_encoder_batch(index, batch_size, seq_length, rng)
        return
    packing = PackingConfig(seq_length, (seq_length,))
    rows = list(_read_histories(Path(histories_file)))
    for start in range(0, min(len(rows), batch_size * num_batches) - batch_size + 1, batch_size):
        yield pack_histories(rows[start : start + batch_size], index, packing).tensors


def _read_histories(path: Path) -> Iterator:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"calibration histories {path}: cannot read ({exc})") from None
    for line_no, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield parse_history(line)
            except HistoryError as exc:
                raise InputFileError(f"calibration histories {path}: line {line_no}: {exc}") from None


@dataclass(frozen=True)
class EngineMetadata:
    """Written as `model.plan.json` beside the engine."""

    tensorrt_version: str
    gpu: str
    precision: str
    profile: dict
    workspace_gb: float
    fp32_layers: int
    onnx_sha256: str
    build_seconds: float
    timing_cache: str | None

    def write(self, engine_path: Path) -> Path:
        path = engine_path.with_name(engine_path.name + ".json")
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
