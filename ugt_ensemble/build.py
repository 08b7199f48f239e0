"""`build_repository`: PyTorch UGT + catalog -> checked Triton model repository.

Steps: catalog, model, ONNX export, ONNX-vs-PyTorch validation, repository files, offline config
checks, then the staged repository replaces the previous build. Any failure leaves the previous
repository as it was.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ugt_ensemble import __version__
from ugt_ensemble.catalog import Catalog, load_catalog, synthetic_catalog
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.validate import ShapeCheck, validate_onnx
from ugt_ensemble.model import UGT, UGTConfig, build_model
from ugt_ensemble.model.checkpoint import model_from_state, read_checkpoint, save_checkpoint
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.render import CHECKPOINT_FILE, ONNX_FILE
from ugt_ensemble.repository.rules import RepositoryReport, check_repository
from ugt_ensemble.repository.writer import MANIFEST, StagedRepository, write_models

LOGGER = logging.getLogger(__name__)
BUILD_STEPS = 6


@dataclass
class BuildResult:
    """What a build produced (the model and catalog stay usable in-process, e.g. by tests)."""

    repository: Path
    catalog: Catalog
    model: UGT
    validation: list[ShapeCheck]
    report: RepositoryReport
    files: list[Path]


def build_repository(config: BuildConfig, progress: StepProgress | None = None) -> BuildResult:
    """Build and check the repository described by `config` (see the module docstring)."""
    progress = progress or StepProgress.silent()
    with progress.step("Reading the model config and catalog"):
        model_config, state = _model_config(config)
        config.check_model(model_config)
        catalog = _catalog(config, model_config)
        index = catalog.index()
    with progress.step(f"Building the UGT model ({_describe_model(config, model_config)})"):
        tables = catalog.prefix_tables()
        if state is None:
            model = build_model(model_config, tables, seed=config.seed)
        else:
            model = model_from_state(model_config, tables, state, config.checkpoint)  # type: ignore[arg-type]
    with StagedRepository(config.output_dir) as staged:
        onnx_path = staged.path / config.triton.model_name / "1" / ONNX_FILE
        e = config.export
        with progress.step(
            f"Exporting ONNX (batch {e.min_batch_size}-{e.max_batch_size}, "
            f"sequence {e.min_seq_length}-{e.max_seq_length})"
        ):
            export_onnx(model, onnx_path, config.export, index)
        with progress.step(f"Validating ONNX against PyTorch on {len(e.validation_shapes)} shapes"):
            checks = validate_onnx(model, onnx_path, index, config.export, seed=config.seed)
        with progress.step("Writing the Triton model repository"):
            files = [onnx_path, *write_models(staged.path, config, model_config, index)]
            if config.triton.naive_peer:
                checkpoint = staged.path / config.triton.naive_peer_name / "1" / CHECKPOINT_FILE
                save_checkpoint(model, checkpoint)
                files.append(checkpoint)
        with progress.step("Checking configs against Triton's ModelConfig proto and ensemble rules"):
            report = check_repository(staged.path)
            if not report.valid:
                raise RepositoryError("the emitted repository is invalid:\n  " + "\n  ".join(report.errors))
        names = list(report.configs)
        manifest = _manifest(config, model_config, catalog, checks, names)
        staged.commit(names, manifest)
    root = config.output_dir.absolute()
    moved = [root / f.relative_to(staged.path) for f in files] + [root / MANIFEST]
    return BuildResult(root, catalog, model, checks, report, moved)


def _model_config(config: BuildConfig) -> tuple[UGTConfig, dict[str, torch.Tensor] | None]:
    if config.checkpoint is None:
        return config.model or UGTConfig(), None
    return read_checkpoint(config.checkpoint, config.model)


def _catalog(config: BuildConfig, model_config: UGTConfig) -> Catalog:
    if config.catalog_path is not None:
        return load_catalog(config.catalog_path, model_config.codebook_sizes)
    return synthetic_catalog(config.synthetic_items, config.seed, model_config.codebook_sizes)


def _describe_model(config: BuildConfig, model_config: UGTConfig) -> str:
    weights = f"weights from {config.checkpoint}" if config.checkpoint else f"seed {config.seed}"
    return f"d_model {model_config.d_model}, {model_config.num_layers} layers, beam {model_config.beam_size}, {weights}"


def _manifest(
    config: BuildConfig, model_config: UGTConfig, catalog: Catalog, checks: list[ShapeCheck], names: list[str]
) -> dict[str, Any]:
    tables = catalog.prefix_tables()
    return {
        "generator": f"ugt-ensemble {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "models": names,
        "ensemble": config.triton.ensemble_name,
        "engine": config.export.engine,
        "model_config": model_config.to_dict(),
        "weights": str(config.checkpoint) if config.checkpoint else f"seeded initialisation (seed {config.seed})",
        "catalog": {
            "source": catalog.source,
            "items": len(catalog),
            "max_l2_children": tables.max_l2_children,
            "max_l3_children": tables.max_l3_children,
        },
        "export": dataclasses.asdict(config.export),
        "triton": dataclasses.asdict(config.triton),
        "validation": [dataclasses.asdict(c) for c in checks],
    }
