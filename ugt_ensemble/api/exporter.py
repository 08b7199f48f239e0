"""`ServingExporter`: PyTorch -> ONNX -> TensorRT -> Triton in one object, over the same functions the CLI uses.

Step by step (`export_onnx` -> `optimize_tensorrt` -> `generate_triton_config`) the exporter remembers the
model and files of the previous step; `deploy_full_pipeline` runs the whole checked build at once.
"""

from __future__ import annotations

import abc
import shutil
from pathlib import Path
from typing import Any

import torch

from ugt_ensemble.api.components import ONNXExporter, TensorRTOptimizer, TritonConfigGenerator
from ugt_ensemble.config import BenchmarkConfig, BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import ExportError
from ugt_ensemble.model.step import choose_catalog
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.deployment import validate_deployment as _validate_deployment


class ServingExporterInterface(abc.ABC):
    """PyTorch -> ONNX -> TensorRT -> Triton, one method per step, plus the benchmark."""

    @abc.abstractmethod
    def export_onnx(self, model: torch.nn.Module, save_path: str, config: ExportConfig | None = None) -> str: ...

    @abc.abstractmethod
    def optimize_tensorrt(self, onnx_path: str, engine_path: str, config: ExportConfig | None = None) -> str: ...

    @abc.abstractmethod
    def generate_triton_config(self, model_repository: str, config: ExportConfig | None = None) -> str: ...

    @abc.abstractmethod
    def benchmark(self, triton_url: str, model_name: str, num_requests: int = 10000) -> dict[str, float]: ...


class ServingExporter(ServingExporterInterface):
    """`ServingExporter(export_config, triton_config, benchmark_config)`: each step, or `deploy_full_pipeline`."""

    def __init__(
        self,
        export_config: ExportConfig | None = None,
        triton_config: TritonConfig | None = None,
        benchmark_config: BenchmarkConfig | None = None,
        show_progress: bool = True,
    ) -> None:
        self.export_config = export_config or ExportConfig()
        self.triton_config = triton_config or TritonConfig()
        self.benchmark_config = benchmark_config or BenchmarkConfig()
        self.show_progress = show_progress
        BuildConfig(export=self.export_config, triton=self.triton_config)  # the cross-checks, now
        self._model: torch.nn.Module | None = None
        self._onnx: Path | None = None
        self._engine: Path | None = None
        self._repository: Path | None = None  # the repository written last: benchmark() reads its catalog

    def export_onnx(self, model: torch.nn.Module, save_path: str | Path, config: ExportConfig | None = None) -> str:
        """Export `model` (a step-contract module) to ONNX and check it; returns the file's path."""
        path = ONNXExporter(config or self.export_config, self.triton_config).export(model, save_path)
        self._model, self._onnx, self._engine = model, Path(path), None
        return path

    def optimize_tensorrt(
        self, onnx_path: str | Path, engine_path: str | Path, config: ExportConfig | None = None
    ) -> str:
        """Build a TensorRT engine from `onnx_path` (TensorRT 10 and a GPU); returns the engine's path."""
        catalog = choose_catalog(config or self.export_config, self._model)
        path = TensorRTOptimizer(config or self.export_config, catalog).optimize(onnx_path, engine_path)
        self._onnx, self._engine = Path(onnx_path), Path(path)
        return path

    def generate_triton_config(self, model_repository: str | Path, config: ExportConfig | None = None) -> str:
        """Write and check the whole repository for the model exported before; returns the ensemble's
        config.pbtxt path."""
        if self._onnx is None:
            raise ExportError("generate_triton_config serves the model exported before: call export_onnx first")
        generator = TritonConfigGenerator(self.triton_config, config or self.export_config)
        path = generator.generate(model_repository, self._onnx, self._model, self._engine)
        self._repository = Path(model_repository)
        return path

    def benchmark(self, triton_url: str, model_name: str = "ugt_recommend", num_requests: int = 10000) -> dict:
        """Load `model_name` at `triton_url` with histories of the served catalog (the repository this exporter
        wrote, unless `BenchmarkConfig.model_repository` names one); `BenchmarkResult.as_row()`: throughput
        (req/s), latency_p50/p90/p95/p99/avg/min/max (ms), total/successful/failed_requests, and more."""
        from ugt_ensemble.api.benchmark import TritonBenchmark

        fields = {**self.benchmark_config.__dict__, "num_requests": num_requests}
        if fields.get("model_repository") is None and self._repository is not None:
            fields["model_repository"] = self._repository
        config = BenchmarkConfig(**fields)
        result = TritonBenchmark(config).run(triton_url, model_name)
        return result.as_row()

    def deploy_full_pipeline(
        self,
        model: torch.nn.Module,
        model_repository: str | Path,
        onnx_path: str | Path | None = None,
        engine_path: str | Path | None = None,
    ) -> dict[str, Any]:
        """Export, check, optimise and write the repository for `model`, then validate it.

        Returns onnx_path, engine_path, config_path and model_repository, with the files in
        the repository (copied to `onnx_path` / `engine_path` when given), plus validate_deployment's
        valid / errors / info and the build's catalog_validity.
        """
        from ugt_ensemble.build import build_repository

        config = BuildConfig(output_dir=Path(model_repository), export=self.export_config, triton=self.triton_config)
        progress = StepProgress(enabled=self.show_progress)
        result = build_repository(config, progress, model=model)  # the catalog: `choose_catalog`
        served_onnx, served_engine = result.prepared.onnx_path, result.prepared.engine_path
        report = _validate_deployment(result.repository, self.export_config.model_name)
        self._model, self._onnx, self._repository = model, _copy(served_onnx, onnx_path), result.repository
        self._engine = _copy(served_engine, engine_path) if result.prepared.engine else None
        validity = result.prepared.validity
        return {
            "onnx_path": str(self._onnx),
            "engine_path": str(self._engine or served_engine),
            "config_path": str(result.repository / self.export_config.model_name / "config.pbtxt"),
            "model_repository": str(result.repository),
            **report,
            "catalog_validity": validity.as_dict() if validity else None,
        }

    def validate_deployment(self, model_repository: str | Path, model_name: str | None = None) -> dict[str, Any]:
        """{"valid", "errors", "info"} of a repository (and `model_name` in it), offline."""
        return _validate_deployment(model_repository, model_name)


def _copy(source: Path, target: str | Path | None) -> Path:
    if target is None:
        return source
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return Path(target)
