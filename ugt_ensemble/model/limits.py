"""Probe a model step at the build's limits before export: the longest history and the last code of
each codebook. A model whose position table is shorter than `max_seq_length`, or whose vocabularies are
smaller than the codebooks, otherwise fails later with a bare `IndexError: index out of range in self`
(in PyTorch) or an out-of-bounds Gather (in ONNX Runtime), or only on the first long request served.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ugt_ensemble.errors import StepContractError
from ugt_ensemble.model.contract import Runner
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import (
    ENCODER_CODE_INPUTS,
    ENCODER_MASK,
    ENCODER_POSITIONS,
    ENCODER_TOKEN_TYPES,
    NUM_TOKEN_TYPES,
)


def check_limits(
    run: Runner,
    index: CatalogIndex,
    max_seq_length: int,
    codebook_sizes: Sequence[int],
    source: str,
    module: torch.nn.Module | None = None,
) -> None:
    """StepContractError naming the flag and field to change if `run` fails at the build's limits."""
    for level, size in enumerate(codebook_sizes):
        try:
            run(_last_code(level, size, min(2, max_seq_length)))
        except StepContractError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise StepContractError(
                f"{source} fails on code {size - 1}, the last of level {level + 1}'s codebook of {size} "
                f"({_first_line(exc)}): its level-{level + 1} vocabulary is smaller than the codebook; build with "
                f"--codebook-sizes (ExportConfig.codebook_sizes) equal to the model's vocabularies, and a catalog "
                "whose codes lie within them"
            ) from None
    try:
        run(_longest_history(index, max_seq_length))
    except StepContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is the model's, reported with its cause
        tables = _small_tables(module, max_seq_length, "pos")
        raise StepContractError(
            f"{source} fails on a history of {max_seq_length} events ({_first_line(exc)}){tables}: its position "
            f"table is likely shorter than the build's longest history; build with --max-seq-length N "
            f"(ExportConfig.max_seq_length) no larger than the model's positions, or give the model more"
        ) from None


def _longest_history(index: CatalogIndex, length: int) -> dict[str, np.ndarray]:
    """One row of `length` real catalog events (positions 0..length-1)."""
    rows = np.arange(length) % len(index.item_ids)
    codes = index.codes_by_level[:, rows]
    feed = {name: codes[level][None, :].astype(np.int64) for level, name in enumerate(ENCODER_CODE_INPUTS)}
    return _with_events(feed, length, token_type=1)


def _last_code(level: int, size: int, length: int) -> dict[str, np.ndarray]:
    """One row of `length` events whose level-`level` code is the codebook's last (`size` - 1)."""
    feed = {name: np.zeros((1, length), dtype=np.int64) for name in ENCODER_CODE_INPUTS}
    feed[ENCODER_CODE_INPUTS[level]][:] = size - 1
    return _with_events(feed, length, token_type=NUM_TOKEN_TYPES - 1)


def _with_events(codes: dict[str, np.ndarray], length: int, token_type: int) -> dict[str, np.ndarray]:
    """`codes` completed to a feed of one row of `length` real events of `token_type`."""
    return {
        **codes,
        ENCODER_POSITIONS: np.arange(length, dtype=np.int64)[None, :],
        ENCODER_TOKEN_TYPES: np.full((1, length), token_type, dtype=np.int64),
        ENCODER_MASK: np.ones((1, length), dtype=np.float32),
    }


def _small_tables(module: torch.nn.Module | None, limit: int, hint: str) -> str:
    """", e.g. `encoder.position` is Embedding(256, 32)": the embeddings named like `hint` below `limit`."""
    if module is None:
        return ""
    small = [
        f"`{name}` is Embedding({m.num_embeddings}, {m.embedding_dim})"
        for name, m in module.named_modules()
        if isinstance(m, torch.nn.Embedding) and m.num_embeddings < limit and hint in name.lower()
    ]
    return f"; {', '.join(small[:3])}" if small else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"
