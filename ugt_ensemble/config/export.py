"""`ExportConfig`: what is exported and how (the core API's fields and defaults first, then the build's)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.config.checks import int_tuple, require_model_name, require_one_of, require_positive_int
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES, NUM_RECOMMENDATIONS
from ugt_ensemble.runtime.errors import clip
from ugt_ensemble.runtime.rule_request import require_set_name

LOGGER = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "ugt-ensemble" / "tensorrt-timing.cache"
#: Allowed |score difference| of a TensorRT engine against PyTorch, per precision (codes must match
#: up to ties within it). Reduced precision moves scores; the decoder stays fp32 to keep rankings.
ENGINE_SCORE_ATOL: dict[str, float] = {"fp32": 1e-3, "fp16": 5e-2, "int8": 0.25}
#: (batch, sequence) shapes the exported model is checked on, from the smallest to both maxima.
DEFAULT_VALIDATION_SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (3, 17), (8, 256), (64, 100), (2, 1024))


@dataclass(frozen=True)
class ExportConfig:
    """Export settings. The first fields (`model_name` to `num_recommendations`) are the core API's, with its
    defaults.

    Attributes:
        model_name: the model clients call: the ensemble's name in the repository.
        precision: engine precision, fp32, fp16 or int8 (TensorRT); the CPU engines run fp32.
        max/min/opt_batch_size, max/min/opt_seq_length: the dynamic shape range of the exported graph
            and of every model's `max_batch_size`; the opt values are the TensorRT profile's optimum
            (clipped into [min, max]).
        opset_version: ONNX opset asked of the exporter (torch 2.13's exporter writes 18 at least; the
            opset written is recorded in ugt_build.json).
        do_constant_folding: let the exporter fold constants and optimise the graph.
        workspace_size_gb: TensorRT builder workspace limit (GiB; fractions allowed).
        codebook_sizes: the three semantic-ID vocabularies (catalog codes must lie within them).
        num_recommendations: K, the items each answer holds (the model step returns [B, K, 3] codes).
        catalog_path: CSV/Parquet catalog (item_id, l1, l2, l3); None: the reference model's own tables
            when a model is given, else a synthetic catalog.
        validation_shapes: (batch, sequence) shapes on which the export is checked against PyTorch.
        score_atol: largest allowed |score difference| in that check (codes must be identical up to
            ties within it).
        min_catalog_validity: fail the build when a smaller share of the returned code triples are
            catalog items (None: report the share only).
        timing_cache: TensorRT timing cache, reused and updated by every build (None: no cache).
        calibration_histories: INT8 calibration data, one JSON history per line (None: synthetic).
        calibration_batches, calibration_batch_size: how much INT8 calibration data.
        engine_score_atol: the TensorRT engine's tolerance against PyTorch (None: `ENGINE_SCORE_ATOL`).
        set_columns: catalog columns that define item sets (a boolean column: one set; any other: one set
            per value, "COL=value"); see `ugt_ensemble.catalog.item_sets`.
        item_sets: (name, file) of item sets listed in files (one item id per line, or a CSV with item_id);
            "NAME=FILE" strings and a {name: file} mapping are read as well.
        max_rule_list: the most entries of one request's rule lists (`rule_removed_items`: its excluded ids,
            history items with exclude-history, set-intersection removals; `rule_dead_pairs` is never longer)
            that a TensorRT engine's profile covers; preprocess refuses longer requests for a tensorrt_plan step.
    """

    model_name: str = "ugt_recommend"
    precision: str = "fp16"
    max_batch_size: int = 64
    max_seq_length: int = 1024
    min_batch_size: int = 1
    opt_batch_size: int = 32
    min_seq_length: int = 1
    opt_seq_length: int = 512
    opset_version: int = 17
    do_constant_folding: bool = True
    workspace_size_gb: float = 4
    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    num_recommendations: int = NUM_RECOMMENDATIONS
    catalog_path: Path | None = None
    validation_shapes: tuple[tuple[int, int], ...] | None = None
    score_atol: float = 1e-4
    min_catalog_validity: float | None = None
    timing_cache: Path | None = DEFAULT_TIMING_CACHE
    calibration_histories: Path | None = None
    calibration_batches: int = 16
    calibration_batch_size: int = 32
    engine_score_atol: float | None = None
    set_columns: tuple[str, ...] = ()
    item_sets: tuple[tuple[str, Path], ...] = ()
    max_rule_list: int = 2048

    def __post_init__(self) -> None:
        require_model_name(self.model_name)
        require_one_of("precision", self.precision, PRECISIONS)
        names = ("max_batch_size", "max_seq_length", "min_batch_size", "opt_batch_size", "min_seq_length")
        for name in (*names, "opt_seq_length", "opset_version", "num_recommendations", "calibration_batches"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("calibration_batch_size", self.calibration_batch_size)
        require_positive_int("max_rule_list", self.max_rule_list)
        sizes = int_tuple("codebook_sizes", self.codebook_sizes)
        if len(sizes) != 3:
            raise ConfigError(f"`codebook_sizes` must be three positive ints, got {self.codebook_sizes}")
        object.__setattr__(self, "codebook_sizes", sizes)
        for name in ("batch_size", "seq_length"):
            self._order(name)
        if not self.workspace_size_gb > 0:
            raise ConfigError(f"`workspace_size_gb` must be > 0, got {self.workspace_size_gb}")
        if not self.score_atol > 0:
            raise ConfigError(f"`score_atol` must be > 0, got {self.score_atol}")
        if self.min_catalog_validity is not None and not 0 <= self.min_catalog_validity <= 1:
            raise ConfigError(f"`min_catalog_validity` must be in [0, 1], got {self.min_catalog_validity}")
        for name in ("catalog_path", "timing_cache", "calibration_histories"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        self._set_validation_shapes()
        self._set_item_set_sources()

    def validate(self) -> ExportConfig:
        """For callers of `config.validate()`: the checks ran on construction, so this returns the config."""
        return self

    @property
    def workspace_bytes(self) -> int:
        return int(self.workspace_size_gb * 2**30)

    @property
    def engine_atol(self) -> float:
        """The TensorRT engine's score tolerance against PyTorch."""
        return self.engine_score_atol if self.engine_score_atol is not None else ENGINE_SCORE_ATOL[self.precision]

    def _order(self, name: str) -> None:
        low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
        if low > high:
            raise ConfigError(f"`min_{name}` ({low}) exceeds `max_{name}` ({high})")
        opt = getattr(self, f"opt_{name}")
        if not low <= opt <= high:
            clipped = max(low, min(opt, high))
            LOGGER.debug("`opt_%s` %d lies outside [%d, %d]; using %d", name, opt, low, high, clipped)
            object.__setattr__(self, f"opt_{name}", clipped)

    def _set_item_set_sources(self) -> None:
        """`set_columns` and `item_sets` as tuples of valid, distinct set names (lists too: a manifest's JSON)."""
        columns = (self.set_columns,) if isinstance(self.set_columns, str) else tuple(self.set_columns)
        for column in columns:
            require_set_name(column, "`set_columns` (--set-column COL)")
        entries = self.item_sets.items() if isinstance(self.item_sets, Mapping) else self.item_sets
        entries = (entries,) if isinstance(entries, str) else tuple(entries)
        pairs = tuple(parse_item_set(e) if isinstance(e, str) else _item_set_pair(e) for e in entries)
        names = [*columns, *(name for name, _ in pairs)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"item set name(s) {repeated} given twice in `set_columns` / `item_sets` (--set-column, "
                              "--item-set): each set needs its own name")  # fmt: skip
        object.__setattr__(self, "set_columns", columns)
        object.__setattr__(self, "item_sets", pairs)

    def _set_validation_shapes(self) -> None:
        if self.validation_shapes is None:
            clip = lambda v, lo, hi: max(lo, min(v, hi))  # noqa: E731
            shapes = {
                (clip(b, self.min_batch_size, self.max_batch_size), clip(t, self.min_seq_length, self.max_seq_length))
                for b, t in DEFAULT_VALIDATION_SHAPES
            }
            object.__setattr__(self, "validation_shapes", tuple(sorted(shapes)))
        shapes = tuple(tuple(s) for s in self.validation_shapes)  # type: ignore[union-attr]
        object.__setattr__(self, "validation_shapes", shapes)
        for batch, length in shapes:
            if not (
                self.min_batch_size <= batch <= self.max_batch_size
                and self.min_seq_length <= length <= self.max_seq_length
            ):
                raise ConfigError(f"`validation_shapes` entry {(batch, length)} is outside the export range")


def parse_item_set(text: str) -> tuple[str, Path]:
    """(name, path) of "NAME=FILE" (the name ends at the first "="); `ConfigError` saying the form."""
    name, sep, path = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"`item_sets` entry {clip(repr(text), 80)} must be NAME=FILE (--item-set NAME=FILE)")
    return require_set_name(name.strip(), "`item_sets` (--item-set NAME=FILE)"), Path(path.strip())


def _item_set_pair(entry: object) -> tuple[str, Path]:
    try:
        name, path = entry  # type: ignore[misc]
        path = Path(path)
    except (TypeError, ValueError):
        raise ConfigError(
            f'`item_sets` entries are (name, file) pairs or "NAME=FILE", got {clip(repr(entry), 80)}'
        ) from None
    return require_set_name(name, "`item_sets` (--item-set NAME=FILE)"), path
