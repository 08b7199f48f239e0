"""Everything about a TensorRT build that can be decided without TensorRT or a GPU.

The optimisation profile, the builder flags of each precision, the layers kept in fp32, the INT8
calibration batches and the metadata written beside `model.plan` are plain Python here, so they
are tested on any machine; `tensorrt_build` only turns them into TensorRT calls.

A model step that honours the business rules is built from its baked ONNX file (`export.bake`: the constraint
tables are weights, the inputs are the six encoder and four rule tensors); its profile also covers the rule
tensors, with lists of up to `ExportConfig.max_rule_list` entries. No TensorRT engine of such a model has been
built or run on a GPU in this project yet: these shapes are tested without TensorRT only.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import onnx

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError, InputFileError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import (
    CODEBOOK_SIZES,
    ENCODER_INPUTS,
    RULE_DEAD_PAIRS,
    RULE_L1_VALID,
    RULE_REMOVED_ITEMS,
    RULE_SET,
    TABLE_NAMES,
)
from ugt_ensemble.runtime.history import HistoryError, parse_history
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories
from ugt_ensemble.runtime.rules import default_rules

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


Shape = tuple[int, ...]


@dataclass(frozen=True)
class ProfileShapes:
    """One optimisation profile: (batch, sequence) at min / opt / max, the same for all six encoder inputs.

    `rule_lists` (None: the model takes no rule inputs) is the (min, opt, max) length of the rule lists
    (`rule_dead_pairs`, `rule_removed_items` [batch, length, 2]); `rule_set` [batch, 1] and `rule_l1_valid`
    [batch, `codes1`] follow the batch range.
    """

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]
    rule_lists: tuple[int, int, int] | None = None
    codes1: int = CODEBOOK_SIZES[0]

    @classmethod
    def from_export(cls, config: ExportConfig, rules: bool = False) -> ProfileShapes:
        """The profile of `config`'s ranges; with `rules`, rule lists of 1 (a request without rules: one padding
        entry, the optimum) to `config.max_rule_list` entries."""
        return cls(
            (config.min_batch_size, config.min_seq_length),
            (int(config.opt_batch_size), int(config.opt_seq_length)),  # type: ignore[arg-type]
            (config.max_batch_size, config.max_seq_length),
            (1, 1, config.max_rule_list) if rules else None,
            config.codebook_sizes[0],
        )

    @classmethod
    def for_model(cls, onnx_path: str | Path, config: ExportConfig) -> ProfileShapes:
        """The profile of the model in `onnx_path`: with the rule inputs when it takes them. `ExportError` when it
        still takes the constraint tables (bake them first: `export.bake.bake_tables`)."""
        names = {i.name for i in onnx.load(str(onnx_path), load_external_data=False).graph.input}
        tables = sorted(names & set(TABLE_NAMES))
        if tables:
            raise ExportError(
                f"{onnx_path} takes the constraint tables {tables} as inputs, which a TensorRT engine's config cannot "
                "feed: bake them into the graph first (ugt_ensemble.export.bake.bake_tables)"
            )
        return cls.from_export(config, rules=RULE_SET in names)

    def inputs(self) -> dict[str, tuple[Shape, Shape, Shape]]:
        """input name -> (min, opt, max) shape, as `IOptimizationProfile.set_shape` takes them."""
        shapes: dict[str, tuple[Shape, Shape, Shape]] = {
            name: (self.min, self.opt, self.max) for name in ENCODER_INPUTS
        }
        if self.rule_lists is None:
            return shapes
        batches = (self.min[0], self.opt[0], self.max[0])
        shapes[RULE_SET] = tuple((b, 1) for b in batches)  # type: ignore[assignment]
        shapes[RULE_L1_VALID] = tuple((b, self.codes1) for b in batches)  # type: ignore[assignment]
        for name in (RULE_DEAD_PAIRS, RULE_REMOVED_ITEMS):
            shapes[name] = tuple((b, n, 2) for b, n in zip(batches, self.rule_lists))  # type: ignore[assignment]
        return shapes


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


def int8_calibration(
    index: CatalogIndex, config: ExportConfig, seed: int = 0, data: ConstraintData | None = None
) -> Iterator | None:
    """The calibration batches an int8 build of `config` needs (None for other precisions). A model that takes
    the rule inputs gets `data`'s rule tensors without rules beside each batch's encoder tensors."""
    if config.precision != "int8":
        return None
    length = int(config.opt_seq_length)  # type: ignore[arg-type]
    batches = calibration_batches(
        index, config.calibration_batch_size, length, config.calibration_batches, config.calibration_histories, seed
    )
    return batches if data is None else with_default_rules(batches, data)


def with_default_rules(batches: Iterator[dict[str, np.ndarray]], data: ConstraintData) -> Iterator[dict]:
    """Each batch of encoder tensors with the rule tensors of rows without rules (writable copies)."""
    for batch in batches:
        rows = len(batch[ENCODER_INPUTS[0]])
        yield {**batch, **{name: np.array(v) for name, v in default_rules(data, rows).items()}}


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


def engine_feed(
    feed: Mapping[str, np.ndarray], inputs: Sequence[str], data: ConstraintData | None, source: str
) -> dict[str, np.ndarray]:
    """What an engine taking `inputs` is fed for `feed`: those tensors, with the rule tensors of rows without
    rules (from `data`) when it takes rule inputs that `feed` lacks. `ExportError` naming a missing input."""
    feed = dict(feed)
    if RULE_SET in inputs and RULE_SET not in feed and data is not None:
        rows = len(feed[ENCODER_INPUTS[0]])
        feed.update({name: np.array(v) for name, v in default_rules(data, rows).items()})
    missing = [name for name in inputs if name not in feed]
    if missing:
        raise ExportError(f"{source} takes {missing}, which the feed lacks (rule inputs need the constraint data)")
    return {name: feed[name] for name in inputs}


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
