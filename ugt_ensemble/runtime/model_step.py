"""Model-step helpers for engines run inside a Python-backend model: input checks and batching.

Requests reach the model step with different history lengths and rule-list widths (ragged batching).
`run_by_length` runs each distinct length and width group as one engine call and splits the outputs back
per request, so short histories and short rule lists are never padded to the longest ones in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from .batching import row_bounds
from .contract import (
    CODEBOOK_SIZES,
    ENCODER_DTYPES,
    ENCODER_INPUTS,
    ENCODER_MASK,
    MODEL_OUTPUTS,
    NUM_TOKEN_TYPES,
    RULE_DEAD_PAIRS,
    RULE_L1_VALID,
    RULE_PADDING,
    RULE_REMOVED_ITEMS,
    RULE_SET,
    TABLE_NAMES,
    encoder_upper_bounds,
)
from .errors import RequestError
from .rule_lists import list_width, rows_per_call, width_groups

if TYPE_CHECKING:
    from .constraint_data import ConstraintData

Tensors = dict[str, np.ndarray]


@dataclass(frozen=True)
class EncoderLimits:
    """Valid ranges of the encoder tensors (out-of-range ids would crash the engine's Gather)."""

    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES
    max_seq_length: int = 1024
    num_token_types: int = NUM_TOKEN_TYPES  # token type 0 is padding

    def ranges(self) -> dict[str, int]:
        """Exclusive upper bound of each int64 encoder tensor (lower bound 0)."""
        return encoder_upper_bounds(self.codebook_sizes, self.max_seq_length, self.num_token_types)


def check_encoder_inputs(tensors: Tensors, limits: EncoderLimits) -> None:
    """Raise `RequestError` unless all six tensors share one (rows, T) shape with in-range values."""
    shapes = {name: tensors[name].shape for name in ENCODER_INPUTS}
    first = shapes[ENCODER_INPUTS[0]]
    if len(first) != 2 or any(shape != first for shape in shapes.values()):
        raise RequestError(f"encoder inputs must share one [rows, length] shape, got {shapes}")
    if not 1 <= first[1] <= limits.max_seq_length:
        raise RequestError(f"history length {first[1]} is outside [1, {limits.max_seq_length}]")
    for name, upper in limits.ranges().items():
        values = tensors[name]
        if values.size and (values.min() < 0 or values.max() >= upper):
            raise RequestError(f"{name} has values outside [0, {upper}): min {values.min()}, max {values.max()}")
    if not np.all(np.isfinite(tensors[ENCODER_MASK])):
        raise RequestError(f"{ENCODER_MASK} has non-finite values")


def check_rule_inputs(tensors: Tensors, data: "ConstraintData") -> None:
    """Raise `RequestError` unless the four rule tensors fit the served constraint data (an index out of
    range would crash the engine's Gather): shapes per `contract.RULE_INPUTS`, rows as the encoder's."""
    tables = data.tables()
    sets, pairs = tables[TABLE_NAMES[-1]].shape[0], tables[TABLE_NAMES[2]].shape[0]
    (c2, c3), v1 = data.fanout_caps, tables[TABLE_NAMES[0]].shape[0]
    rows = len(tensors[RULE_SET])
    shapes = {RULE_SET: (rows, 1), RULE_L1_VALID: (rows, v1)}
    for name, shape in shapes.items():
        if tensors[name].shape != shape:
            raise RequestError(f"{name} must be {list(shape)}, got {list(tensors[name].shape)}")
    _check_range(RULE_SET, tensors[RULE_SET], 0, sets)
    for name, parents, slots in ((RULE_DEAD_PAIRS, v1, c2), (RULE_REMOVED_ITEMS, pairs, c3)):
        value = tensors[name]
        if value.ndim != 3 or value.shape[0] != rows or value.shape[2] != 2 or value.shape[1] < 1:
            raise RequestError(f"{name} must be [{rows}, n >= 1, 2], got {list(value.shape)}")
        _check_range(f"{name}[..., 0]", value[..., 0], RULE_PADDING, parents)
        _check_range(f"{name}[..., 1]", value[..., 1], 0, slots)


def _check_range(name: str, values: np.ndarray, low: int, high: int) -> None:
    if values.size and (values.min() < low or values.max() >= high):
        raise RequestError(f"{name} has values outside [{low}, {high}): min {values.min()}, max {values.max()}")


def run_by_length(
    requests: list[Tensors],
    run: Callable[[Tensors], list[np.ndarray]],
    max_tokens: int | None = None,
    max_rule_entries: int | None = None,
) -> list[Tensors]:
    """Run `run(feed)` once per distinct length and rule-list width group, in slices of at most `max_tokens`
    rows x length and `max_rule_entries` rows x list width (which bound the engine's peak memory); return each
    request's outputs by name.

    Every tensor of the requests goes into the feed (the encoder tensors, and the rule tensors when the
    model takes them). Rule lists are padded (`RULE_PADDING`) only to the widest of their width group
    (`rule_lists.width_groups`): a request with short lists never pays for another's long ones."""
    results: list[Tensors | None] = [None] * len(requests)
    lengths = [r[ENCODER_INPUTS[0]].shape[1] for r in requests]
    names = list(requests[0]) if requests else []
    for length in sorted(set(lengths)):
        same = [i for i, n in enumerate(lengths) if n == length]
        for group in width_groups([requests[i] for i in same]):
            members = [same[j] for j in group]
            feed = {name: concat_rows([requests[i][name] for i in members]) for name in names}
            rows = (max_tokens or len(feed[ENCODER_INPUTS[0]]) * length) // length
            if max_rule_entries:
                rows = min(rows, rows_per_call(list_width(feed), max_rule_entries))
            outputs = _run_sliced(run, feed, max(1, rows))
            bounds = row_bounds([requests[i][ENCODER_INPUTS[0]].shape[0] for i in members])
            for i, (start, stop) in zip(members, bounds):
                results[i] = {name: out[start:stop] for name, out in zip(MODEL_OUTPUTS, outputs)}
    return results  # type: ignore[return-value]


def _run_sliced(run: Callable[[Tensors], list[np.ndarray]], feed: Tensors, rows: int) -> list[np.ndarray]:
    total = len(feed[ENCODER_INPUTS[0]])
    if total <= rows:
        return run(feed)
    parts = [run({name: t[start : start + rows] for name, t in feed.items()}) for start in range(0, total, rows)]
    return [np.concatenate(outputs) for outputs in zip(*parts)]


def concat_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of every part; a part narrower on axis 1 (a shorter rule list) is padded with `RULE_PADDING`.
    Callers group the parts by width first (`rule_lists.width_groups`)."""
    if len(parts) == 1:
        return parts[0]
    width = max(p.shape[1] for p in parts) if parts[0].ndim == 3 else None
    if width is not None and any(p.shape[1] != width for p in parts):
        parts = [_pad_rules(p, width) for p in parts]
    return np.concatenate(parts)


def _pad_rules(part: np.ndarray, width: int) -> np.ndarray:
    """(rows, E, 2) -> (rows, width, 2), padded with entries that match nothing (-1, 0)."""
    padded = np.zeros((part.shape[0], width, part.shape[2]), dtype=part.dtype)
    padded[:, :, 0] = RULE_PADDING
    padded[:, : part.shape[1]] = part
    return padded


def warm_up(infer: Callable[[list[Tensors]], list[Tensors]], model_config: dict, length: int) -> None:
    """Run zero-data (empty) histories of `length` at batch 1 and at the loaded config's max_batch_size.

    Called from `initialize`, so the batch follows whatever max_batch_size the config carries (Model
    Analyzer's candidates change it), and Triton's statistics never count these runs. `length` 0: none.
    """
    if length < 1:
        return
    for rows in sorted({1, max(1, int(model_config.get("max_batch_size", 1)))}):
        infer([{name: np.zeros((rows, length), dtype=ENCODER_DTYPES[name]) for name in ENCODER_INPUTS}])
