"""Export a model step (a module, or a `torch.export` program) to ONNX with dynamic batch and sequence
axes (torch's dynamo exporter).

A module with `rule_step()` (a `ConstrainedRecommender`) is exported as that step: the six encoder tensors,
the four rule tensors and the eight table tensors of `runtime.contract` are inputs (the catalog is data fed
at run time, not constants), and the file's metadata names its fan-out caps (`ugt.fanout_caps` = "C2,C3")
and how it honours the rules (`ugt.rules` = "search"). A `torch.export` program of such a step (a .pt2 that
`save_step_model` wrote, whose caps `load_step_archive` read) is exported with the same names and metadata.
"""

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
from ugt_ensemble.model.rule_program import rule_export_inputs
from ugt_ensemble.model.sources import program_fanout_caps, takes_rules
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import (
    ENCODER_INPUTS,
    FANOUT_CAPS_KEY,
    MODEL_OUTPUTS,
    RULE_NAMES,
    RULES_KEY,
    TABLE_NAMES,
)

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
    names, metadata = list(ENCODER_INPUTS), {}
    if not isinstance(model, ExportedProgram) and callable(getattr(model, "rule_step", None)):
        args, dynamic = rule_export_inputs(model, args, dynamic, batch)  # type: ignore[arg-type]
        names += [*RULE_NAMES, *TABLE_NAMES]
        metadata = {FANOUT_CAPS_KEY: ",".join(map(str, model.fanout_caps)), RULES_KEY: "search"}
        model = model.rule_step()
    elif isinstance(model, ExportedProgram) and takes_rules(model):
        names += [*RULE_NAMES, *TABLE_NAMES]
        metadata = {FANOUT_CAPS_KEY: ",".join(map(str, _program_caps(model, path))), RULES_KEY: "search"}
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                input_names=names,
                output_names=list(MODEL_OUTPUTS),
                dynamic_shapes=dynamic,
                opset_version=config.opset_version,
                optimize=config.do_constant_folding,
                verbose=False,
            )
            program.model.metadata_props.update(metadata)
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        raise ExportError(f"ONNX export to {path} failed: {type(exc).__name__}: {exc}") from exc
    LOGGER.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def _program_caps(program: ExportedProgram, path: Path) -> tuple[int, int]:
    """The fan-out caps of a program that takes the rule inputs (ExportError when its archive held none)."""
    caps = program_fanout_caps(program)
    if caps is None:
        raise ExportError(
            f"ONNX export to {path}: the program takes the rule and table inputs but has no fan-out caps; save it "
            "with ugt_ensemble.model.save_step_model and load it with ugt_ensemble.model.sources.load_step_archive"
        )
    return caps


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
