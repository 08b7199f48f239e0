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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ugt_ensemble import __version__
from ugt_ensemble.catalog import Catalog, load_catalog, synthetic_catalog
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import RepositoryError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.tensorrt_build import build_engine, require_tensorrt
from ugt_ensemble.export.tensorrt_check import TensorRTReport, require_tensorrt_parsable
from ugt_ensemble.export.tensorrt_plan import EngineMetadata, int8_calibration
from ugt_ensemble.export.tensorrt_run import TensorRTRunner
from ugt_ensemble.export.validate import ShapeCheck, validate_onnx, validate_runner
from ugt_ensemble.model import UGT, UGTConfig, build_model
from ugt_ensemble.model.checkpoint import model_from_state, read_checkpoint, save_checkpoint
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.manifest import MANIFEST
from ugt_ensemble.repository.render import CHECKPOINT_FILE, ONNX_FILE, PLAN_FILE
from ugt_ensemble.repository.rules import RepositoryReport, check_repository
from ugt_ensemble.repository.staging import StagedRepository, check_replaceable
from ugt_ensemble.repository.writer import static_files, write_models
from ugt_ensemble.runtime.catalog_index import CatalogIndex

LOGGER = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """What a build produced (the model and catalog stay usable in-process, e.g. by tests)."""

    repository: Path
    catalog: Catalog
    model: UGT
    validation: list[ShapeCheck]
    report: RepositoryReport
    files: list[Path]


def build_steps(config: BuildConfig) -> int:
    """How many progress steps `build_repository` shows for `config`."""
    return 7 + (2 if config.export.engine == "tensorrt" else 0)


def build_repository(
    config: BuildConfig, progress: StepProgress | None = None, model: UGT | None = None, catalog: Catalog | None = None
) -> BuildResult:
    """Build and check the repository described by `config` (see the module docstring).

    `model` and `catalog`, when given, are used as they are (the Python API's deploy_full_pipeline).
    """
    progress = progress or StepProgress.silent()
    if config.export.engine == "tensorrt":
        require_tensorrt()  # one line on what is missing, before any work
    ours = static_files(config)
    check_replaceable(config.output_dir, config.triton.model_names(), ours)  # before any work: never lose files
    with progress.step("Reading the model config and catalog"):
        model_config, state = (model.config, None) if model is not None else _model_config(config)
        config.check_model(model_config)
        catalog = catalog or _catalog(config, model_config)
        index = catalog.index()
    with progress.step(f"Building the UGT model ({_describe_model(config, model_config)})"):
        if model is not None:
            pass  # given by the caller
        elif state is None:
            model = build_model(model_config, catalog.prefix_tables(), seed=config.seed)
        else:
            model = model_from_state(model_config, catalog.prefix_tables(), state, config.checkpoint)  # type: ignore[arg-type]
    with StagedRepository(config.output_dir, ours) as staged:
        version_dir = staged.path / config.triton.model_name / "1"
        onnx_path, checks, trt_report = _export_and_check(config, model, index, version_dir, progress)
        files = [onnx_path]
        engine = None
        if config.export.engine == "tensorrt":
            engine = _build_and_check_engine(config, model, index, onnx_path, version_dir, progress)
            files += [version_dir / PLAN_FILE, version_dir / (PLAN_FILE + ".json")]
        with progress.step("Writing the Triton model repository"):
            files += write_models(staged.path, config, model_config, index)
            if config.triton.naive_peer:
                checkpoint = staged.path / config.triton.naive_peer_name / "1" / CHECKPOINT_FILE
                save_checkpoint(model, checkpoint)
                files.append(checkpoint)
        with progress.step("Checking configs against Triton's ModelConfig proto and ensemble rules"):
            report = check_repository(staged.path)
            if not report.valid:
                raise RepositoryError("the emitted repository is invalid:\n  " + "\n  ".join(report.errors))
        names = list(report.configs)
        manifest = _manifest(config, model_config, catalog, checks, names, trt_report, engine)
        staged.commit(names, manifest)
    root = config.output_dir.absolute()
    moved = [root / f.relative_to(staged.path) for f in files] + [root / MANIFEST]
    return BuildResult(root, catalog, model, checks, report, moved)


def _export_and_check(
    config: BuildConfig, model: UGT, index: CatalogIndex, version_dir: Path, progress: StepProgress
) -> tuple[Path, list[ShapeCheck], TensorRTReport]:
    """Export (or copy `config.onnx_path`), validate against PyTorch, check against TensorRT's parser."""
    onnx_path = version_dir / ONNX_FILE
    e = config.export
    if config.onnx_path is None:
        ranges = f"batch {e.min_batch_size}-{e.max_batch_size}, sequence {e.min_seq_length}-{e.max_seq_length}"
        with progress.step(f"Exporting ONNX ({ranges})"):
            export_onnx(model, onnx_path, config.export, index)
    else:
        with progress.step(f"Reusing {config.onnx_path} (no export)"):
            version_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(config.onnx_path, onnx_path)
    with progress.step(f"Validating ONNX against PyTorch on {len(e.validation_shapes)} shapes"):
        checks = validate_onnx(model, onnx_path, index, config.export, seed=config.seed)
    with progress.step("Checking the graph against TensorRT 10's ONNX parser (static)"):
        trt_report = require_tensorrt_parsable(onnx_path, config.export.needs_tensorrt_parser)
    return onnx_path, checks, trt_report


def _build_and_check_engine(
    config: BuildConfig, model: UGT, index: CatalogIndex, onnx_path: Path, version_dir: Path, progress: StepProgress
) -> EngineMetadata:
    e = config.export
    engine_path = version_dir / PLAN_FILE
    calibration = int8_calibration(index, e, config.seed)
    with progress.step(f"Building the TensorRT engine ({e.precision}, workspace {e.workspace_mib} MiB)"):
        metadata = build_engine(onnx_path, engine_path, e, calibration)
    with progress.step(f"Validating the engine against PyTorch (score atol {e.engine_atol:g})"):
        validate_runner(
            model, TensorRTRunner(engine_path), str(engine_path), index, e.validation_shapes, e.engine_atol, config.seed
        )
    return metadata


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
    config: BuildConfig,
    model_config: UGTConfig,
    catalog: Catalog,
    checks: list[ShapeCheck],
    names: list[str],
    trt_report: TensorRTReport,
    engine: EngineMetadata | None,
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
        "tensorrt_static_check": {
            "ok": trt_report.ok,
            "problems": trt_report.problems,
            "opset": trt_report.opset,
            "ops": trt_report.op_counts,
        },
        "tensorrt_engine": dataclasses.asdict(engine) if engine else None,
    }
