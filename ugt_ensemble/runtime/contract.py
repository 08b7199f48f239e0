"""The wire and tensor contract shared by the client, the Triton models and the exporter.

This module (like the whole `runtime` package) depends on nothing but numpy and the standard
library: `build` copies the package into the model repository as `ugt_runtime`.
"""

from __future__ import annotations

import numpy as np

#: Codebook sizes of the three semantic-ID levels.
CODEBOOK_SIZES: tuple[int, int, int] = (1024, 4096, 16384)
#: Items returned per request.
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
#: Padding of ITEM_IDS / SEMANTIC_IDS and SCORES where fewer than 50 items are returned.
PAD_ITEM_ID = -1
PAD_SCORE = float("-inf")

#: Model-step tensors, in call order.
ENCODER_INPUTS: tuple[str, ...] = (
    "encoder_l1_ids",
    "encoder_l2_ids",
    "encoder_l3_ids",
    "encoder_positions",
    "encoder_token_types",
    "encoder_mask",
)
ENCODER_DTYPES: dict[str, type] = {name: np.int64 for name in ENCODER_INPUTS[:-1]}
ENCODER_DTYPES["encoder_mask"] = np.float32
#: Encoder tensors that postprocess reads to drop items already in the history: the three codes, then the mask.
HISTORY_CODE_INPUTS: tuple[str, ...] = (*ENCODER_INPUTS[:3], ENCODER_INPUTS[5])
RECOMMENDATIONS = "recommendations"
MODEL_SCORES = "scores"
MODEL_OUTPUTS: tuple[str, ...] = (RECOMMENDATIONS, MODEL_SCORES)


def code_keys(codes: np.ndarray, codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES) -> np.ndarray:
    """One int64 per (l1, l2, l3) triple: (l1 * V2 + l2) * V3 + l3 (unique for in-range codes)."""
    codes = np.asarray(codes, dtype=np.int64)
    return (codes[..., 0] * codebook_sizes[1] + codes[..., 1]) * codebook_sizes[2] + codes[..., 2]


#: File names inside a model's version directory.
CATALOG_FILE = "catalog.npz"
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
CHECKPOINT_FILE = "checkpoint.pt"
