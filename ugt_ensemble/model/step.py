"""The model step a build serves, from whichever way the user brought it.

Four ways in: a `torch.nn.Module` (the Python API), a `torch.export` archive (`build --model x.pt2`), an
ONNX file with the contract's signature and no PyTorch model (`build --onnx x.onnx`), or the reference
UGT (a checkpoint, or seeded weights) when none of them is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.export import ExportedProgram

from ugt_ensemble.catalog import Catalog, load_catalog, synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, UGTConfig
from ugt_ensemble.errors import ConfigError, StepContractError
from ugt_ensemble.model.checkpoint import model_from_state, read_checkpoint
from ugt_ensemble.model.contract import Runner, check_forward_signature, torch_runner
from ugt_ensemble.model.provenance import MODULE_LABEL, ONNX_LABEL, PT2_LABEL, WEIGHTS_LABEL, ModelSource
from ugt_ensemble.model.rule_program import RuleProgramStep
from ugt_ensemble.model.sources import check_program_signature, load_step_archive
from ugt_ensemble.model.ugt import UGT, build_model
from ugt_ensemble.runtime.constraint_data import ConstraintData

LOGGER = logging.getLogger(__name__)


@dataclass
class StepModel:
    """A model step: what to export (None: the ONNX file is served as it is), and its eager form.

    Attributes:
        source: what it is, in words, for logs and the manifest's `model_source`.
        exportable: the module or program to export to ONNX.
        eager: runs in PyTorch for the contract and parity checks (None for a bare ONNX file).
        ugt_config: the architecture when it is the reference UGT.
        origin: its kind and file, the manifest's typed `model` field (what a later deploy rebuilds from).
    """

    source: str
    exportable: torch.nn.Module | ExportedProgram | None
    eager: torch.nn.Module | None
    ugt_config: UGTConfig | None = None
    origin: ModelSource = field(default_factory=lambda: ModelSource("module"))

    def runner(self) -> Runner | None:
        """The eager model as a runner (None without one)."""
        return torch_runner(self.eager, self.source) if self.eager is not None else None


def given_module(model: torch.nn.Module) -> StepModel:
    """A module from the Python API (put in eval mode; its forward must take the six encoder tensors)."""
    if not isinstance(model, torch.nn.Module):
        raise StepContractError(f"the model must be a torch.nn.Module, got {type(model).__name__}")
    source = f"{MODULE_LABEL}{type(model).__name__} module"
    check_forward_signature(model, source)
    return StepModel(source, model.eval(), model, getattr(model, "config", None) if isinstance(model, UGT) else None)


def step_model(config: BuildConfig, catalog: Catalog) -> StepModel:
    """The model step `config` names: a .pt2, a bare ONNX file, or the reference UGT."""
    e = config.export
    if config.model_file is not None:
        program = load_step_archive(config.model_file)
        source = f"{config.model_file}{PT2_LABEL}"
        caps = check_program_signature(
            program, source, (e.min_batch_size, e.max_batch_size), (e.min_seq_length, e.max_seq_length)
        )
        eager = program.module()
        if caps is not None:  # a rule step: the eager checks run it without rules, over the catalog's tables
            eager = RuleProgramStep(eager, ConstraintData.build(catalog.index(), None, caps))
        return StepModel(source, program, eager, origin=ModelSource.of("pt2", config.model_file))
    if config.serves_bare_onnx:
        return StepModel(f"{config.onnx_path}{ONNX_LABEL}", None, None, origin=ModelSource.of("onnx", config.onnx_path))
    return reference_ugt(config, catalog)


def reference_ugt(config: BuildConfig, catalog: Catalog) -> StepModel:
    """The reference UGT on `catalog`'s tables: checkpoint weights, or a seeded initialisation."""
    if config.checkpoint is None:
        ugt_config, state = config.model_config or UGTConfig(codebook_sizes=config.export.codebook_sizes), None
    else:
        ugt_config, state = read_checkpoint(config.checkpoint, config.model_config)
    _check_fits(config, ugt_config)
    if state is None:
        model = build_model(ugt_config, catalog.prefix_tables(), seed=config.seed)
        weights, origin = f"seed {config.seed}", ModelSource("reference")
    else:
        model = model_from_state(ugt_config, catalog.prefix_tables(), state, config.checkpoint)  # type: ignore[arg-type]
        weights, origin = f"{WEIGHTS_LABEL}{config.checkpoint}", ModelSource.of("checkpoint", config.checkpoint)
    source = f"reference UGT (d_model {ugt_config.d_model}, {ugt_config.num_layers} layers, {weights})"
    return StepModel(source, model, model, ugt_config, origin)


def choose_catalog(
    export: ExportConfig,
    model: torch.nn.Module | None = None,
    model_file: bool = False,
    synthetic_items: int = 10_000,
    seed: int = 0,
) -> Catalog:
    """The catalog a model step is built and served with, by one rule (the CLI's and the Python API's):

    1. `export.catalog_path` when it names one;
    2. else, for a module built on catalog tables (e.g. a `ConstrainedRecommender`), the catalog of those
       tables with item ids 0..N-1 (with a warning: name the catalog to serve your item ids);
    3. else, for a model of the user's own (a module without tables, or a .pt2 or ONNX file: `model_file`),
       ConfigError: its codes refer to a catalog only the user knows;
    4. else (the reference UGT) a synthetic catalog of `synthetic_items` items drawn from `seed`.
    """
    if export.catalog_path is not None:
        return load_catalog(export.catalog_path, export.codebook_sizes)
    if model is not None:
        own = catalog_of_module(model, export.codebook_sizes)
        if own is None:
            raise ConfigError(
                f"{type(model).__name__} has no catalog tables: name the catalog its codes refer to "
                "(ExportConfig(catalog_path=...), or build --catalog FILE)"
            )
        LOGGER.warning(
            "no catalog_path: using the codes of the model's constraint tables with item ids 0..%d; name the "
            "catalog (ExportConfig(catalog_path=...)) to serve your item ids",
            len(own) - 1,
        )
        return own
    if model_file:
        raise ConfigError("a model of your own needs the catalog its codes refer to: --catalog FILE (CSV or Parquet)")
    return synthetic_catalog(synthetic_items, seed, export.codebook_sizes)


def catalog_of_module(model: torch.nn.Module, codebook_sizes: tuple[int, int, int]) -> Catalog | None:
    """The catalog a catalog-constrained module was built on (item ids 0..N-1), or None."""
    tables = getattr(model, "tables", None)
    if tables is None or not hasattr(tables, "codes"):
        return None
    codes = tables.codes()
    return Catalog.from_arrays(
        np.arange(len(codes), dtype=np.int64), codes, codebook_sizes, "catalog reconstructed from the model's tables"
    )


def _check_fits(config: BuildConfig, model: UGTConfig) -> None:
    if config.export.max_seq_length > model.max_seq_length:
        raise ConfigError(
            f"export `max_seq_length` ({config.export.max_seq_length}) exceeds the model's "
            f"`max_seq_length` ({model.max_seq_length})"
        )
    if tuple(model.codebook_sizes) != tuple(config.export.codebook_sizes):
        raise ConfigError(
            f"the model's `codebook_sizes` {model.codebook_sizes} differ from the export's "
            f"{config.export.codebook_sizes}"
        )
    if model.num_recommendations != config.export.num_recommendations:
        raise ConfigError(
            f"the model returns {model.num_recommendations} recommendations, the export asks for "
            f"{config.export.num_recommendations} (`num_recommendations`)"
        )
