"""`build_repository`: a model step + a catalog -> a checked Triton model repository.

The pipeline, top to bottom (each a numbered progress step):
1. read the catalog; 2. load the model step (a module, a .pt2, an ONNX file, or the reference UGT);
3. check its step contract in PyTorch; 4. export ONNX (or take the given file); 5. check the ONNX
model's contract; 6. validate it against PyTorch; 7. check it against TensorRT's parser; 8. probe how
often it returns catalog items; 9-10. build and validate the TensorRT engine (tensorrt_plan only);
11. write the repository; 12. check every config. The output directory is checked before any work,
and the staged repository replaces the previous build only after every step passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import ContextManager

import numpy as np
import torch

from ugt_ensemble.build_result import BuildResult, PreparedStep, build_manifest
from ugt_ensemble.catalog import Catalog
from ugt_ensemble.catalog.item_sets import item_sets_for
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.errors import ConfigError, RepositoryError
from ugt_ensemble.export.bake import bake_served_model
from ugt_ensemble.export.onnx_contract import OnnxSignature, check_onnx_signature
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.onnx_file import copy_onnx
from ugt_ensemble.export.probe import probe_catalog_validity, require_validity
from ugt_ensemble.export.rule_probe import probe_rule_compliance, require_rule_compliance
from ugt_ensemble.export.tensorrt_check import require_tensorrt_parsable
from ugt_ensemble.export.validate import ShapeCheck, onnx_runner, validate_runner
from ugt_ensemble.histories import random_encoder_batch
from ugt_ensemble.model.contract import check_outputs
from ugt_ensemble.model.limits import check_limits
from ugt_ensemble.model.step import StepModel, choose_catalog, given_module, step_model
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.input_data import write_input_data_files
from ugt_ensemble.repository.lock import RepositoryLock
from ugt_ensemble.repository.model_io import native_model_errors
from ugt_ensemble.repository.peer_hook import naive_peer
from ugt_ensemble.repository.rules import check_repository
from ugt_ensemble.repository.staging import StagedRepository, check_replaceable
from ugt_ensemble.repository.writer import static_files, write_models
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import ONNX_FILE, PLAN_FILE

LOGGER = logging.getLogger(__name__)


def build_repository(
    config: BuildConfig,
    progress: StepProgress | None = None,
    model: torch.nn.Module | None = None,
    catalog: Catalog | None = None,
) -> BuildResult:
    """Build and check the repository `config` describes (see the module docstring).

    `model` and `catalog`, when given, are used as they are (the Python API's deploy_full_pipeline).
    """
    step = BuildSteps(progress or StepProgress.silent(), plan(config, model is not None))
    ours = static_files(config)
    check_replaceable(config.output_dir, config.model_names, ours)  # before any work: never lose files
    with _lock_existing(config.output_dir), StagedRepository(config.output_dir, ours) as staged:
        folder = staged.path / config.triton.step_name / "1"
        prepared = prepare_step(config, step, folder, model, catalog)
        config = with_rules(config, prepared)
        with step():
            write_models(staged.path, config, prepared.data)
            if config.triton.naive_peer:
                naive_peer().write_checkpoint(staged.path / config.triton.naive_peer_name / "1", prepared.step.eager)
        with step():
            report = check_repository(staged.path)
            report.errors += native_model_errors(staged.path, report.configs)  # a native step's config vs its ONNX
            if not report.valid:
                raise RepositoryError("the emitted repository is invalid:\n  " + "\n  ".join(report.errors))
        files = staged.written_files(config.model_names)
        staged.commit(config.model_names, build_manifest(config, prepared))
    root = config.output_dir.absolute()
    served = root / config.triton.step_name / "1"
    prepared = dataclasses.replace(prepared, folder=served, onnx_path=served / ONNX_FILE)
    tools = write_input_data_files(root, seed=config.seed)  # outside the repository: <output>_tools/
    written = [f for f in (tools.ensemble, tools.model_step, tools.ensemble_rules) if f.is_file()]
    return BuildResult(root, prepared, report, [root / f for f in files], written)


def _lock_existing(output_dir: Path) -> ContextManager[object]:
    """The repository lock when rebuilding over an existing repository: a deploy, rollback or cleanup in
    progress makes the build fail at once, naming it, instead of replacing folders under it."""
    if not output_dir.is_dir():
        return contextlib.nullcontext()
    return RepositoryLock(output_dir, "build", timeout_s=0)


def plan(config: BuildConfig, module_given: bool = False) -> list[str]:
    """The titles of the progress steps a build of `config` shows."""
    e, t = config.export, config.triton
    eager = module_given or not config.serves_bare_onnx
    ranges = f"batch {e.min_batch_size}-{e.max_batch_size}, sequence {e.min_seq_length}-{e.max_seq_length}"
    steps = ["Reading the catalog", "Loading the model step"]
    steps += ["Checking the step contract in PyTorch"] if eager else []
    steps += [f"Exporting ONNX ({ranges})" if config.onnx_path is None else f"Taking {config.onnx_path}"]
    steps += ["Checking the ONNX model against the step contract"]
    steps += [f"Validating ONNX against PyTorch on {len(e.validation_shapes)} shapes"] if eager else []
    steps += ["Checking the graph against TensorRT 10's ONNX parser (static)", "Probing catalog validity"]
    if t.platform == "tensorrt_plan" and config.plan_path is not None:
        steps += [f"Taking the TensorRT engine {config.plan_path}"]
        steps += [f"Validating the engine (score atol {e.engine_atol:g})"]
    elif t.platform == "tensorrt_plan":
        steps += [f"Building the TensorRT engine ({e.precision}, workspace {e.workspace_size_gb:g} GiB)"]
        steps += [f"Validating the engine (score atol {e.engine_atol:g})"]
    return steps + ["Writing the Triton model repository", "Checking configs against Triton's ModelConfig proto"]


def prepare_step(
    config: BuildConfig,
    step: BuildSteps,
    folder: Path,
    model: torch.nn.Module | None = None,
    catalog: Catalog | None = None,
) -> PreparedStep:
    """Steps 1-10: the model step's files in `folder` (its version directory), checked."""
    tensorrt = config.triton.platform == "tensorrt_plan"
    if tensorrt:
        from ugt_ensemble.export.tensorrt_build import require_tensorrt

        require_tensorrt()  # one line on what is missing, before any work
    prepared = check_step(config, step, folder / ONNX_FILE, model, catalog)
    if not config.triton.python_model_step and prepared.signature and prepared.signature.rules_in_search:
        _bake_native(config, prepared)
    if tensorrt:
        reference = prepared.step.runner() or onnx_runner(prepared.onnx_path, data=prepared.data)
        _build_engine(config, prepared, step, reference)
    return prepared


def check_step(
    config: BuildConfig,
    step: BuildSteps,
    onnx_path: Path,
    model: torch.nn.Module | None = None,
    catalog: Catalog | None = None,
) -> PreparedStep:
    """Steps 1-8: the catalog (`choose_catalog`), the model step, its contract in PyTorch, the ONNX model
    written to `onnx_path` (exported, or the given file copied), its contract, parity with PyTorch, the
    TensorRT parser check and the catalog-validity probe. `ONNXExporter.export` runs the same checks."""
    with step(detail=str(config.export.catalog_path or ("from the model" if model is not None else "synthetic"))):
        catalog = catalog or _catalog(config, model)
        index = catalog.index()
        sets = item_sets_for(config.export, config.export.catalog_path, index)  # refused here, not after the export
    with step():
        chosen = given_module(model) if model is not None else step_model(config, catalog)
    LOGGER.info("model step: %s", chosen.source)
    prepared = PreparedStep(onnx_path.parent, catalog, chosen, onnx_path)
    reference = chosen.runner()
    if reference is not None:
        with step():
            _check_eager_contract(reference, index, config, chosen.source, chosen.eager)
    with step():
        _export_or_copy(config, chosen, prepared.onnx_path, index)
    with step():
        prepared.signature = check_onnx_signature(prepared.onnx_path, config.export.num_recommendations)
        prepared.data = constraint_data(config, prepared.signature, index, sets)
        candidate = onnx_runner(prepared.onnx_path, data=prepared.data)
        _check_eager_contract(candidate, index, config, f"ONNX model {prepared.onnx_path.name}")
    if reference is not None:
        with step():
            prepared.validation = _validate(reference, candidate, str(prepared.onnx_path), index, config)
    with step():
        prepared.tensorrt_check = require_tensorrt_parsable(prepared.onnx_path, config.triton.needs_tensorrt_parser)
    with step():
        prepared.validity = probe_catalog_validity(candidate, index, config.packing, seed=config.seed)
        LOGGER.info("catalog validity: %s", prepared.validity.describe())
        require_validity(prepared.validity, config.export.min_catalog_validity, chosen.source)
        if prepared.signature.rules_in_search:  # postprocess trusts such a model: check it honours the rules
            prepared.rule_compliance = probe_rule_compliance(candidate, prepared.data, config.packing, config.seed)
            LOGGER.info("%s", prepared.rule_compliance.describe())
            require_rule_compliance(prepared.rule_compliance, chosen.source)
    return prepared


def _bake_native(config: BuildConfig, prepared: PreparedStep) -> None:
    """A native model step (Triton's onnxruntime backend, TensorRT) is fed the batched inputs only: its model.onnx
    gets the catalog's tables baked in (`export.bake`), checked against the unbaked export, which stays beside it
    (`UNBAKED_ONNX_FILE`) for later data-only versions; the TensorRT parser check runs again on the baked graph."""
    e, data, served = config.export, prepared.data, prepared.onnx_path
    unbaked = bake_served_model(served, data)
    label = f"{served} (tables baked)"
    shapes = e.validation_shapes[:2]
    reference, baked = onnx_runner(unbaked, data=data), onnx_runner(served, data=data)
    validate_runner(reference, baked, label, data.index, shapes, e.score_atol, e.num_recommendations, config.seed)
    prepared.tensorrt_check = require_tensorrt_parsable(served, config.triton.needs_tensorrt_parser)


def constraint_data(
    config: BuildConfig, signature: OnnxSignature, index: CatalogIndex, sets: dict[str, np.ndarray] | None = None
) -> ConstraintData:
    """The served catalog's constraint data: its item sets (`--set-column`, `--item-set`; `sets` when they were
    read already, when the catalog was) and the tables padded to the model's fan-out caps (a catalog wider than a
    cap is refused, naming it)."""
    sets = item_sets_for(config.export, config.export.catalog_path, index) if sets is None else sets
    if config.triton.postprocess.exclude_history and not signature.rules_in_search:
        raise ConfigError(
            "--exclude-history needs a model that honours the rules in its search (one built on "
            "ConstrainedRecommender, or an ONNX file with the rule inputs); this one would return short answers"
        )
    return ConstraintData.build(index, sets, signature.fanout_caps)


def with_rules(config: BuildConfig, prepared: PreparedStep) -> BuildConfig:
    """`config` with the model step's `rules_in_search` as the model's signature says."""
    honours = bool(prepared.signature and prepared.signature.rules_in_search)
    step = dataclasses.replace(config.triton.model_step, rules_in_search=honours)
    return dataclasses.replace(config, triton=dataclasses.replace(config.triton, model_step=step))


class BuildSteps:
    """Numbered progress steps whose titles come from `plan` (one source for the count and the titles)."""

    def __init__(self, progress: StepProgress, titles: list[str]) -> None:
        self.progress, self.titles = progress, iter(titles)
        progress.total = len(titles)

    def __call__(self, detail: str = "") -> ContextManager[None]:
        title = next(self.titles)
        return self.progress.step(f"{title} ({detail})" if detail else title)


def _catalog(config: BuildConfig, model: torch.nn.Module | None) -> Catalog:
    own_file = config.model_file is not None or config.serves_bare_onnx
    return choose_catalog(config.export, model, own_file, config.synthetic_items, config.seed)


def _check_eager_contract(run, index, config: BuildConfig, source: str, module=None) -> None:  # noqa: ANN001
    check_limits(run, index, config.export.max_seq_length, config.export.codebook_sizes, source, module)
    for batch, length in ((1, 1), (3, min(17, config.export.max_seq_length))):
        feed = random_encoder_batch(index, batch, length, np.random.default_rng(config.seed))
        check_outputs(run(feed), batch, config.export.num_recommendations, source)


def _export_or_copy(config: BuildConfig, chosen: StepModel, onnx_path: Path, index) -> None:  # noqa: ANN001
    if config.onnx_path is not None:  # checked (opset, external data) before anything opens it
        ours = config.onnx_path.resolve().is_relative_to(config.output_dir.resolve())  # versions share hard links
        copy_onnx(config.onnx_path, onnx_path, hard_links=ours)
    else:
        export_onnx(chosen.exportable, onnx_path, config.export, index)


def _validate(reference, candidate, label: str, index, config: BuildConfig) -> list[ShapeCheck]:  # noqa: ANN001
    e = config.export
    return validate_runner(
        reference, candidate, label, index, e.validation_shapes, e.score_atol, e.num_recommendations, config.seed
    )


def _build_engine(config: BuildConfig, prepared: PreparedStep, step: BuildSteps, reference) -> None:  # noqa: ANN001
    from ugt_ensemble.export.tensorrt_build import build_engine
    from ugt_ensemble.export.tensorrt_plan import int8_calibration
    from ugt_ensemble.export.tensorrt_run import TensorRTRunner

    e, index = config.export, prepared.catalog.index()
    engine_path = prepared.folder / PLAN_FILE
    with step():
        if config.plan_path is not None:
            shutil.copyfile(config.plan_path, engine_path)
            prepared.engine = f"taken from {config.plan_path}"
        else:
            calibration = int8_calibration(index, e, config.seed, prepared.data)
            prepared.engine = build_engine(prepared.onnx_path, engine_path, e, calibration)
    with step():
        runner = TensorRTRunner(engine_path, prepared.data)
        validate_runner(
            reference, runner, str(engine_path), index, e.validation_shapes, e.engine_atol, e.num_recommendations
        )

