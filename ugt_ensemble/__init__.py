"""ugt-ensemble: serve a UGT generative recommender on NVIDIA Triton as a three-step ensemble.

The Python API (`ServingExporter`, `validate_deployment`, ...) is imported lazily, so the command
line stays quick for commands that need no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "ServingExporter": "ugt_ensemble.api",
    "ServingExporterInterface": "ugt_ensemble.api",
    "create_exporter": "ugt_ensemble.api",
    "export_to_onnx": "ugt_ensemble.api",
    "build_trt_engine": "ugt_ensemble.api",
    "generate_triton_config": "ugt_ensemble.api",
    "run_benchmark": "ugt_ensemble.api",
    "create_calibration_data_generator": "ugt_ensemble.api",
    "validate_deployment": "ugt_ensemble.deployment",
    "ExportConfig": "ugt_ensemble.config",
    "TritonConfig": "ugt_ensemble.config",
    "BuildConfig": "ugt_ensemble.config",
    "BenchmarkConfig": "ugt_ensemble.bench.runner",
    "UGTConfig": "ugt_ensemble.model.config",
    "build_repository": "ugt_ensemble.build",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ugt_ensemble' has no attribute {name!r}")
