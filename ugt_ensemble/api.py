"""The seeds' Python API: `ServingExporter` and convenience functions, over the same functions the CLI
uses (one implementation of each step: export, TensorRT build, repository, validation, benchmark)."""

from __future__ import annotations

import abc
import dataclasses
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ugt_ensemble.bench.runner import BenchmarkConfig
from ugt_ensemble.bench.runner import run_benchmark as _run_benchmark
from ugt_ensemble.bench.workload import RepositoryInfo
from ugt_ensemble.build import BuildResult, build_repository, build_steps
from ugt_ensemble.catalog import Catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.deployment import validate_deployment
from ugt_ensemble.errors import ExportError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.tensorrt_build import build_engine
from ugt_ensemble.export.tensorrt_check import require_tensorrt_parsable
from ugt_ensemble.export.tensorrt_plan import calibration_batches, int8_calibration
from ugt_ensemble.export.validate import validate_onnx
from ugt_ensemble.model import UGT, UGTConfig
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.repository.rules import check_repository
from ugt_ensemble.repository.writer import write_models
from ugt_ensemble.runtime.catalog_index import CatalogIndex

LOGGER = logging.getLogger(__name__)


class ServingExporterInterface(abc.ABC):
    """PyTorch -> ONNX -> TensorRT -> Triton, one method per step."""

    @abc.abstractmethod
    def export_onnx(self, model: UGT, save_path: str | Path, config: ExportConfig | None = None) -> Path: ...

    @abc.abstractmethod
    def optimize_tensorrt(
        self, onnx_path: str | Path, engine_path: str | Path, config: ExportConfig | None = None
    ) -> Path: ...

    @abc.abstractmethod
    def generate_triton_config(
        self, model_repository: str | Path, config: TritonConfig | None = None
    ) -> list[Path]: ...

    @abc.abstractmethod
    def benchmark(self, triton_url: str, model_name: str = "ugt_recommend", num_requests: int = 500) -> dict: ...


class ServingExporter(ServingExporterInterface):
    """Exports a UGT and emits its Triton repository. The catalog defaults to the model's own
    (reconstructed from its constraint tables, with item ids 0..N-1)."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        export_config: ExportConfig | None = None,
        triton_config: TritonConfig | None = None,
        benchmark_config: BenchmarkConfig | None = None,
        show_progress: bool = True,
    ) -> None:
        self.catalog = catalog
        self.export_config = export_config or ExportConfig()
        self.triton_config = triton_config or TritonConfig()
        self.benchmark_config = benchmark_config or BenchmarkConfig()
        self.show_progress = show_progress
        self.model_config: UGTConfig = UGTConfig()

    def export_onnx(self, model: UGT, save_path: str | Path, config: ExportConfig | None = None) -> Path:
        """Export with dynamic batch/sequence, validate against `model`, run the static TensorRT check."""
        config = config or self.export_config
        self.model_config = model.config
        index = self._index(model)
        path = export_onnx(model, save_path, config, index)
        validate_onnx(model, path, index, config)
        require_tensorrt_parsable(path, config.needs_tensorrt_parser)
        return path

    def optimize_tensorrt(
        self, onnx_path: str | Path, engine_path: str | Path, config: ExportConfig | None = None
    ) -> Path:
        """Build `model.plan` (needs TensorRT 10 and a GPU); int8 calibrates on the catalog's histories."""
        config = config or self.export_config
        calibration = None
        if config.precision == "int8":
            calibration = int8_calibration(self._require_catalog().index(), config)
        build_engine(onnx_path, engine_path, config, calibration)
        return Path(engine_path)

    def generate_triton_config(self, model_repository: str | Path, config: TritonConfig | None = None) -> list[Path]:
        """Write every config.pbtxt, the Python-backend adapters and the catalog indices, then check them."""
        build = BuildConfig(
            output_dir=Path(model_repository), export=self.export_config, triton=config or self.triton_config
        )
        files = write_models(Path(model_repository), build, self.model_config, self._require_catalog().index())
        report = check_repository(model_repository)
        for error in report.errors:
            LOGGER.warning("%s", error)
        return files

    def benchmark(self, triton_url: str, model_name: str = "ugt_recommend", num_requests: int = 500) -> dict:
        """Load the ensemble `model_name` at `triton_url`; one dict of statistics per concurrency."""
        t = self.triton_config
        info = RepositoryInfo(
            Path("."),
            model_name,
            t.model_name,
            None,
            self._require_catalog().index(),
            BuildConfig(export=self.export_config, triton=t).packing,
        )
        config = BenchmarkConfig(
            **{**self.benchmark_config.__dict__, "targets": ("ensemble",), "requests": num_requests, "duration_s": None}
        )
        result = _run_benchmark(config, triton_url, info, show_progress=self.show_progress)
        return {"runs": [s.as_row() for s in result.stats]}

    def deploy_full_pipeline(self, model: UGT, model_repository: str | Path) -> dict[str, Any]:
        """Every step for `model` (the build's staged, checked path), then `validate_deployment`."""
        config = BuildConfig(output_dir=Path(model_repository), export=self.export_config, triton=self.triton_config)
        progress = StepProgress(build_steps(config), enabled=self.show_progress)
        result: BuildResult = build_repository(config, progress, model=model, catalog=self._catalog_for(model))
        return validate_deployment(result.repository, self.triton_config.ensemble_name)

    def _require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise ExportError("no catalog: pass one to ServingExporter(catalog=...) or export a model first")
        return self.catalog

    def _catalog_for(self, model: UGT) -> Catalog:
        if self.catalog is None:
            codes = model.tables.codes()
            self.catalog = Catalog(
                np.arange(len(codes), dtype=np.int64),
                codes,
                model.config.codebook_sizes,
                "catalog reconstructed from the model's constraint tables",
            )
        return self.catalog

    def _index(self, model: UGT) -> CatalogIndex:
        return self._catalog_for(model).index()


def create_exporter(catalog: Catalog | None = None, **configs: Any) -> ServingExporter:
    """A `ServingExporter`; keyword arguments: export_config, triton_config, benchmark_config, show_progress."""
    return ServingExporter(catalog, **configs)


def export_to_onnx(model: UGT, save_path: str | Path, config: ExportConfig | None = None) -> Path:
    return ServingExporter(show_progress=False).export_onnx(model, save_path, config)


def build_trt_engine(
    onnx_path: str | Path, engine_path: str | Path, config: ExportConfig | None = None, catalog: Catalog | None = None
) -> Path:
    return ServingExporter(catalog, show_progress=False).optimize_tensorrt(onnx_path, engine_path, config)


def generate_triton_config(
    model_repository: str | Path,
    config: TritonConfig | None = None,
    catalog: Catalog | None = None,
    export_config: ExportConfig | None = None,
) -> list[Path]:
    exporter = ServingExporter(catalog, export_config=export_config, show_progress=False)
    return exporter.generate_triton_config(model_repository, config)


def run_benchmark(
    triton_url: str,
    model_name: str = "ugt_recommend",
    num_requests: int = 500,
    model_repository: str | Path = "ensemble",
) -> dict:
    """Load a served repository's ensemble (catalog and packing read from `model_repository`)."""
    info = dataclasses.replace(RepositoryInfo.read(model_repository), ensemble=model_name)
    config = BenchmarkConfig(targets=("ensemble",), requests=num_requests)
    result = _run_benchmark(config, triton_url, info, show_progress=False)
    return {"model": model_name, "runs": [s.as_row() for s in result.stats]}


def create_calibration_data_generator(
    catalog: Catalog | CatalogIndex,
    batch_size: int = 32,
    seq_length: int = 512,
    num_batches: int = 16,
    histories_file: str | Path | None = None,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """INT8 calibration batches: packed (batch_size, seq_length) encoder tensors, synthetic or from a file."""
    index = catalog.index() if isinstance(catalog, Catalog) else catalog
    return calibration_batches(index, batch_size, seq_length, num_batches, histories_file, seed)
