"""The Python API's convenience functions (`create_exporter`, `export_to_onnx`, `build_trt_engine`,
`generate_triton_config`, `run_benchmark`), each one line over the classes of `ugt_ensemble.api`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ugt_ensemble.api.components import ONNXExporter, TensorRTOptimizer
from ugt_ensemble.api.exporter import ServingExporter
from ugt_ensemble.config import STEP_FIELDS, BenchmarkConfig, BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ConfigError


def create_exporter(**settings: Any) -> ServingExporter:
    """A ServingExporter from field names of ExportConfig, TritonConfig (and the flat names of its step
    settings, `steps.STEP_FIELDS`) and BenchmarkConfig, e.g.
    `create_exporter(model_name="my_model", precision="fp16", max_batch_size=64, max_seq_length=1024)`."""
    parts: dict[type, dict[str, Any]] = {ExportConfig: {}, TritonConfig: {}, BenchmarkConfig: {}}
    names = {cls: {f.name for f in dataclasses.fields(cls)} for cls in parts}
    names[TritonConfig] |= set(STEP_FIELDS)
    for name, value in settings.items():
        owner = next((cls for cls in parts if name in names[cls]), None)
        if owner is None:
            raise ConfigError(f"create_exporter: {name!r} is no field of ExportConfig, TritonConfig or BenchmarkConfig")
        parts[owner][name] = value
    return ServingExporter(ExportConfig(**parts[ExportConfig]), TritonConfig().with_changes(**parts[TritonConfig]),
                           BenchmarkConfig(**parts[BenchmarkConfig]))  # fmt: skip


def export_to_onnx(model: torch.nn.Module, save_path: str | Path, config: ExportConfig | None = None) -> str:
    """Export and check `model`; returns the ONNX file's path."""
    return ONNXExporter(config).export(model, save_path)


def build_trt_engine(onnx_path: str | Path, engine_path: str | Path, config: ExportConfig | None = None) -> str:
    """Build a TensorRT engine (TensorRT 10 and a GPU); returns its path."""
    return TensorRTOptimizer(config).optimize(onnx_path, engine_path)


def generate_triton_config(
    model_name: str, config: ExportConfig | None = None, triton_config: TritonConfig | None = None
) -> str:
    """The config.pbtxt text of the ensemble `model_name` (what clients call); the steps' configs come with
    the repository that ServingExporter.generate_triton_config writes."""
    from ugt_ensemble.repository.render import render_ensemble

    export = dataclasses.replace(config or ExportConfig(), model_name=model_name)
    return render_ensemble(BuildConfig(export=export, triton=triton_config or TritonConfig()))


def run_benchmark(triton_url: str, model_name: str, num_requests: int = 10000, **settings: Any) -> dict[str, Any]:
    """Load `model_name` at `triton_url`: throughput (req/s), latency_p50/p90/p99 (ms), and more.

    Other BenchmarkConfig fields may be given, e.g. `concurrency=8` or `model_repository="ensemble"`.
    """
    from ugt_ensemble.api.benchmark import TritonBenchmark

    config = BenchmarkConfig(triton_url=triton_url, num_requests=num_requests, **settings)
    return TritonBenchmark(config).run(triton_url, model_name).as_row()
