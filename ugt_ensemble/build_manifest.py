"""What `build` records in `ugt_build.json` beside the files it wrote (`repository.manifest` adds the lists
of models and files): versions, settings, the model's source, the catalog, and every check's result."""

from __future__ import annotations

import dataclasses
import datetime
import platform
from typing import TYPE_CHECKING, Any

import torch

from ugt_ensemble import __version__
from ugt_ensemble.config import BuildConfig
from ugt_ensemble.repository.manifest import GENERATOR

if TYPE_CHECKING:
    from ugt_ensemble.build import PreparedStep


def build_manifest(config: BuildConfig, prepared: PreparedStep) -> dict[str, Any]:
    """The manifest of a build of `config` (its `models` and `files` are added when it is committed)."""
    tables = prepared.catalog.prefix_tables()
    check = prepared.tensorrt_check
    return {
        "generator": f"{GENERATOR} {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "ensemble": config.export.model_name,
        "engine": config.triton.engine,
        "target_server": config.target_server,
        "model_source": prepared.step.source,
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
        "validation": [dataclasses.asdict(c) for c in prepared.validation] or "not run: no PyTorch model",
        "catalog_validity": prepared.validity.as_dict() if prepared.validity else None,
        "tensorrt_static_check": {"ok": check.ok, "problems": check.problems, "opset": check.opset, "ops": check.op_counts}
        if check
        else None,
        "tensorrt_engine": _engine(prepared.engine),
    }


def _engine(engine: object) -> object:
    return dataclasses.asdict(engine) if dataclasses.is_dataclass(engine) else engine  # type: ignore[arg-type]
