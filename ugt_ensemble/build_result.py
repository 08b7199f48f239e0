"""What a build produced (`PreparedStep`, `BuildResult`) and what it records in `ugt_build.json` beside the
files it wrote (`repository.manifest` adds the lists of models and files): versions, settings, the model's
source (`model_source` in words, `model` typed: `model.provenance.ModelSource`), the catalog, and every
check's result."""

from __future__ import annotations

import dataclasses
import datetime
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ugt_ensemble import __version__
from ugt_ensemble.catalog import Catalog
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.export.onnx_contract import OnnxSignature
from ugt_ensemble.export.probe import CatalogValidity
from ugt_ensemble.export.rule_probe import RuleCompliance
from ugt_ensemble.export.tensorrt_check import TensorRTReport
from ugt_ensemble.export.validate import ShapeCheck
from ugt_ensemble.model.step import StepModel
from ugt_ensemble.repository.manifest import GENERATOR
from ugt_ensemble.repository.rules import RepositoryReport
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.runtime.contract import PLAN_FILE


@dataclass
class PreparedStep:
    """The model step ready to serve: its files in `folder` and what the checks measured."""

    folder: Path
    catalog: Catalog
    step: StepModel
    onnx_path: Path
    signature: OnnxSignature | None = None
    validation: list[ShapeCheck] = field(default_factory=list)
    tensorrt_check: TensorRTReport | None = None
    validity: CatalogValidity | None = None
    engine: object | None = None  # EngineMetadata of a TensorRT build
    data: ConstraintData | None = None  # the catalog's constraint data (item sets, tables) the steps serve
    rule_compliance: RuleCompliance | None = None  # the rule probe of a model that declares the rule inputs

    @property
    def engine_path(self) -> Path:
        """The file the model step serves (model.plan for TensorRT, else model.onnx)."""
        return self.folder / PLAN_FILE if self.engine is not None else self.onnx_path


@dataclass
class BuildResult:
    """What a build produced (the model and catalog stay usable in-process, e.g. by tests)."""

    repository: Path
    prepared: PreparedStep
    report: RepositoryReport
    files: list[Path]
    tool_files: list[Path] = field(default_factory=list)  # perf_analyzer input data, beside the repository

    @property
    def catalog(self) -> Catalog:
        return self.prepared.catalog

    @property
    def model(self) -> torch.nn.Module | None:
        return self.prepared.step.eager


def build_manifest(config: BuildConfig, prepared: PreparedStep) -> dict[str, Any]:
    """The manifest of a build of `config` (its `models` and `files` are added when it is committed)."""
    tables = prepared.catalog.prefix_tables()
    return {
        "generator": f"{GENERATOR} {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "ensemble": config.export.model_name,
        "engine": config.triton.engine,
        "target_server": config.target_server,
        "model_source": prepared.step.source,
        "model": prepared.step.origin.as_dict(),
        "model_config": prepared.step.ugt_config.to_dict() if prepared.step.ugt_config else None,
        "weights": str(config.checkpoint) if config.checkpoint else None,
        "seed": config.seed,
        "model_file": str(config.model_file) if config.model_file else None,
        "catalog": {
            "source": prepared.catalog.source,
            "items": len(prepared.catalog),
            "fingerprint": prepared.catalog.fingerprint(),
            "max_l2_children": tables.max_l2_children,
            "max_l3_children": tables.max_l3_children,
        },
        "export": dataclasses.asdict(config.export),
        "triton": dataclasses.asdict(config.triton),
        "onnx": {"opset": prepared.signature.opset if prepared.signature else None},
        "rules": rules_record(prepared),
        "validation": [dataclasses.asdict(c) for c in prepared.validation] or "not run: no PyTorch model",
        "catalog_validity": prepared.validity.as_dict() if prepared.validity else None,
        "rule_compliance": prepared.rule_compliance.as_dict() if prepared.rule_compliance else None,
        "tensorrt_static_check": _static_check(prepared.tensorrt_check),
        "tensorrt_engine": _engine(prepared.engine),
    }


def rules_record(prepared: PreparedStep) -> dict[str, Any]:
    """How the served model honours the business rules: "search" (inside its beam search, with the fan-out
    caps any later catalog must fit) or "none" (requests using a rule are refused), and the item sets."""
    signature, data = prepared.signature, prepared.data
    return {
        "honoured": "search" if signature and signature.rules_in_search else "none",
        "fanout_caps": list(signature.fanout_caps) if signature and signature.fanout_caps else None,
        "item_sets": list(data.set_names) if data is not None else [],
    }


def _engine(engine: object) -> object:
    return dataclasses.asdict(engine) if dataclasses.is_dataclass(engine) else engine  # type: ignore[arg-type]


def _static_check(check: TensorRTReport | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"ok": check.ok, "problems": check.problems, "opset": check.opset, "ops": check.op_counts}
