"""The wire and tensor contract shared by the client, the Triton models and the exporter, with the one
spec of the model step (`STEP_INPUTS`, `STEP_OUTPUTS`) that every checker reads.

A model step takes the six encoder tensors that preprocess packs, each [batch, sequence], and returns
(recommendations int64 [batch, K, 3], scores float32 [batch, K]) best first; `StepTensor.values` says
what each holds, and `encoder_upper_bounds` gives the ranges of the int64 inputs.

This module (like the whole `runtime` package) depends on nothing but numpy and the standard
library: `build` copies the package into the model repository as `ugt_runtime`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Codebook sizes of the three semantic-ID levels.
CODEBOOK_SIZES: tuple[int, int, int] = (1024, 4096, 16384)
#: Levels of a semantic id: an item is an (l1, l2, l3) triple of codes.
NUM_LEVELS = 3
#: Items returned per request (K).
NUM_RECOMMENDATIONS = 50
#: Event types, in token-type order; token type 0 is padding.
EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase")
TOKEN_TYPE_OF_EVENT: dict[str, int] = {name: i + 1 for i, name in enumerate(EVENT_TYPES)}
#: Event type of a bare integer event.
DEFAULT_EVENT_TYPE = "view"
#: Token types of the encoder: padding and each event type.
NUM_TOKEN_TYPES = 1 + len(EVENT_TYPES)

#: Ensemble tensors.
HISTORY = "HISTORY"
ITEM_IDS = "ITEM_IDS"
SCORES = "SCORES"
SEMANTIC_IDS = "SEMANTIC_IDS"
#: Padding of ITEM_IDS / SEMANTIC_IDS and SCORES where fewer than K items are returned.
PAD_ITEM_ID = -1
PAD_SCORE = float("-inf")


@dataclass(frozen=True)
class StepTensor:
    """One tensor of the model-step contract.

    Attributes:
        name: the tensor's name in the exported graph and in Triton's configs.
        dtype: numpy's name of its element type ("int64", "float32").
        shape: each axis by name ("batch", "sequence", "K" = num_recommendations) or fixed size.
        values: what it holds, for people and messages.
    """

    name: str
    dtype: str
    shape: tuple[str | int, ...]
    values: str

    @property
    def numpy_dtype(self) -> type:
        return np.dtype(self.dtype).type

    def dims(self, **sizes: int) -> tuple[int, ...]:
        """The shape with named axes replaced by `sizes` (-1, dynamic, for those not given)."""
        return tuple(axis if isinstance(axis, int) else sizes.get(axis, -1) for axis in self.shape)

    def describe(self) -> str:
        """E.g. "recommendations int64 [batch, K, 3]"."""
        return f"{self.name} {self.dtype} [{', '.join(map(str, self.shape))}]"


_ROWS = ("batch", "sequence")
#: The model step's inputs, in call order (what preprocess packs; padded positions hold 0).
STEP_INPUTS: tuple[StepTensor, ...] = (
    *(
        StepTensor(f"encoder_l{level}_ids", "int64", _ROWS, f"level-{level} codes in [0, codebook size)")
        for level in range(1, NUM_LEVELS + 1)
    ),
    StepTensor("encoder_positions", "int64", _ROWS, "positions in [0, max_seq_length)"),
    StepTensor("encoder_token_types", "int64", _ROWS, f"token types in [0, {NUM_TOKEN_TYPES}); 0 is padding"),
    StepTensor("encoder_mask", "float32", _ROWS, "1.0 for a real event, 0.0 for padding"),
)
#: The model step's outputs, in return order.
STEP_OUTPUTS: tuple[StepTensor, ...] = (
    StepTensor("recommendations", "int64", ("batch", "K", NUM_LEVELS), "codes, best first; -1 in an empty slot"),
    StepTensor("scores", "float32", ("batch", "K"), "best first; -inf in an empty slot, never NaN or +inf"),
)
STEP_TENSORS: dict[str, StepTensor] = {t.name: t for t in (*STEP_INPUTS, *STEP_OUTPUTS)}

#: Model-step tensor names, in call order, and the inputs' numpy types.
ENCODER_INPUTS: tuple[str, ...] = tuple(t.name for t in STEP_INPUTS)
ENCODER_DTYPES: dict[str, type] = {t.name: t.numpy_dtype for t in STEP_INPUTS}
ENCODER_CODE_INPUTS: tuple[str, ...] = ENCODER_INPUTS[:NUM_LEVELS]
ENCODER_POSITIONS, ENCODER_TOKEN_TYPES, ENCODER_MASK = ENCODER_INPUTS[NUM_LEVELS:]
MODEL_OUTPUTS: tuple[str, ...] = tuple(t.name for t in STEP_OUTPUTS)
RECOMMENDATIONS, MODEL_SCORES = MODEL_OUTPUTS


def encoder_upper_bounds(
    codebook_sizes: tuple[int, ...] = CODEBOOK_SIZES, max_seq_length: int = 1024, num_token_types: int = NUM_TOKEN_TYPES
) -> dict[str, int]:
    """Exclusive upper bound of each int64 encoder input (the lower bound is 0)."""
    return {
        **dict(zip(ENCODER_CODE_INPUTS, codebook_sizes)),
        ENCODER_POSITIONS: max_seq_length,
        ENCODER_TOKEN_TYPES: num_token_types,
    }


def code_keys(codes: np.ndarray, codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES) -> np.ndarray:
    """One int64 per (l1, l2, l3) triple: (l1 * V2 + l2) * V3 + l3 (unique for in-range codes)."""
    codes = np.asarray(codes, dtype=np.int64)
    return (codes[..., 0] * codebook_sizes[1] + codes[..., 1]) * codebook_sizes[2] + codes[..., 2]


#: File names inside a model's version directory.
CATALOG_FILE = "catalog.npz"
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
CHECKPOINT_FILE = "checkpoint.pt"


# --- Business rules inside the search (optional part of the contract) -------------------------------
#: A model step honours the rules in its search when it declares every `RULE_INPUTS` and `TABLE_INPUTS`
#: tensor (a `ConstrainedRecommender` does); otherwise it declares none of them. Preprocess packs the rule
#: tensors per request (`ugt_runtime.rules.pack_rules`); the tables are the served catalog's constraint data
#: (`ugt_runtime.constraint_data`), fed by the model step from a memory map, never sent by clients.
#: "pairs" tables are padded by the level-2 fan-out cap and "items" tables by the level-3 cap, so a beam's
#: `offset + slot` never runs past the end.
RULE_INPUTS: tuple[StepTensor, ...] = (
    StepTensor("rule_set", "int64", ("batch", 1), "the base item set: 0 = the whole catalog, s = named set s"),
    StepTensor("rule_l1_valid", "bool", ("batch", "codes1"), "level-1 codes with an eligible item below"),
    StepTensor(
        "rule_dead_pairs", "int64", ("batch", "dead_pairs", 2),
        "(l1 code, child slot) of pairs left without an eligible item; l1 -1 pads",
    ),
    StepTensor(
        "rule_removed_items", "int64", ("batch", "removed_items", 2),
        "(pair index, child slot) of base-set items removed for this request; pair -1 pads",
    ),
)  # fmt: skip
TABLE_INPUTS: tuple[StepTensor, ...] = (
    StepTensor("table_l2_offset", "int64", ("codes1",), "first pair index below each l1 code"),
    StepTensor("table_l2_count", "int64", ("codes1",), "number of pairs below each l1 code"),
    StepTensor("table_pair_l2", "int64", ("pairs",), "the l2 code of each (l1, l2) pair, sorted"),
    StepTensor("table_l3_offset", "int64", ("pairs",), "first item index below each pair"),
    StepTensor("table_l3_count", "int64", ("pairs",), "number of items below each pair"),
    StepTensor("table_item_l3", "int64", ("items",), "the l3 code of each item, items sorted by code"),
    StepTensor("table_set_pairs", "bool", ("sets", "pairs"), "pairs holding an item of each item set"),
    StepTensor("table_set_items", "bool", ("sets", "items"), "items of each item set (set 0: all)"),
)
RULE_NAMES: tuple[str, ...] = tuple(t.name for t in RULE_INPUTS)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLE_INPUTS)
RULE_SET, RULE_L1_VALID, RULE_DEAD_PAIRS, RULE_REMOVED_ITEMS = RULE_NAMES
#: Parent index of a padding entry of `rule_dead_pairs` / `rule_removed_items`: no beam matches it.
RULE_PADDING = -1
RULE_DTYPES: dict[str, type] = {t.name: t.numpy_dtype for t in (*RULE_INPUTS, *TABLE_INPUTS)}
#: ONNX metadata of a model that honours the rules: its fan-out caps ("C2,C3") and how it honours them ("search").
FANOUT_CAPS_KEY, RULES_KEY = "ugt.fanout_caps", "ugt.rules"
#: Folder of a version's catalog and constraint data (.npy files, memory-mapped by every step).
CATALOG_DIR = "catalog"


def default_fanout_caps(max_l2: int, max_l3: int, codebook_sizes: tuple[int, ...] = CODEBOOK_SIZES) -> tuple[int, int]:
    """The widest level-2 and level-3 fan-outs a model step is built for: the build catalog's widest, with
    headroom (x1.25 + 2) so later catalogs of the same codebooks fit without a new export."""
    widths = zip((max_l2, max_l3), codebook_sizes[1:])
    return tuple(min(size, math.ceil(width * 1.25) + 2) for width, size in widths)  # type: ignore[return-value]
