"""Export a model step (a module, or a `torch.export` program) to ONNX with dynamic batch and sequence
axes (torch's dynamo exporter)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.export import Dim, ExportedProgram

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ConfigError, ExportError
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import ENCODER_INPUTS, MODEL_OUTPUTS

LOGGER = logging.getLogger(__name__)


def export_onnx(
    model: torch.nn.Module | ExportedProgram, path: str | Path, config: ExportConfig, index: CatalogIndex
) -> Path:
    """Write `model` as ONNX to `path`; batch in [min, max]_batch_size, sequence in [min, max]_seq_length
    (a program keeps the dynamic axes it was exported with)."""
    if config.max_batch_size < 2 or config.max_seq_length < 2:
        raise ConfigError("dynamic export needs `max_batch_size` >= 2 and `max_seq_length` >= 2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = random_encoder_batch(index, batch=2, length=min(8, config.max_seq_length), rng=np.random.default_rng(0))
    args = tuple(torch.from_numpy(sample[name]) for name in ENCODER_INPUTS)
    batch = Dim("batch", min=config.min_batch_size, max=config.max_batch_size)
    sequence = Dim("sequence", min=config.min_seq_length, max=config.max_seq_length)
    dynamic = None if isinstance(model, ExportedProgram) else tuple({0: batch, 1: sequence} for _ in ENCODER_INPUTS)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                input_names=list(ENCODER_INPUTS),
                output_names=list(MODEL_OUTPUTS),
                dynamic_shapes=dynamic,
                opset_version=config.opset_version,
                optimize=config.do_constant_folding,
                verbose=False,
            )
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        raise ExportError(f"ONNX export to {path} failed: {type(exc).__name__}: {exc}") from exc
    LOGGER.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's warnings and INFO chatter (real errors still raise)."""
    loggers = [
        logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")
    ]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
