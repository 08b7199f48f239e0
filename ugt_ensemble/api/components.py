"""The Python API's component classes, thin faces over the one implementation of each step: `ONNXExporter`
(export + the build's checks), `TensorRTOptimizer` (engine build), `TritonConfigGenerator` (repository), and
`create_calibration_data_generator` (INT8 calibration batches). The catalog is chosen by
`model.step.choose_catalog`, the rule `build` follows."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ugt_ensemble.build import BuildSteps, build_repository, check_step, plan
from ugt_ensemble.catalog import Catalog, synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.errors import MissingFileError
from ugt_ensemble.export.onnx_export import export_onnx
from ugt_ensemble.export.tensorrt_plan import calibration_batches
from ugt_ensemble.export.validate import ShapeCheck
from ugt_ensemble.model.step import choose_catalog, given_module
from ugt_ensemble.progress import StepProgress
from ugt_ensemble.runtime.contract import CODEBOOK_SIZES

Batches = Iterable[dict[str, np.ndarray]]


class ONNXExporter:
    """Exports a model step to ONNX (dynamic batch and sequence) and checks what it wrote."""

    def __init__(self, config: ExportConfig | None = None, triton_config: TritonConfig | None = None) -> None:
        self.config = (config or ExportConfig()).validate()
        self.triton_config = triton_config or TritonConfig()
        self.validation: list[ShapeCheck] = []

    def export(self, model: torch.nn.Module, save_path: str | Path, verify: bool = True) -> str:
        """Write `model` as ONNX; with `verify`, run the build's checks on it (`build.check_step`: the step
        contract in PyTorch and in the file, parity with PyTorch on the validation shapes, the static TensorRT
        check, fatal when the platform parses with TensorRT, and the catalog-validity probe)."""
        if not verify:
            index = choose_catalog(self.config, model).index()
            return str(export_onnx(given_module(model).exportable, save_path, self.config, index))
        config = BuildConfig(export=self.config, triton=self.triton_config)
        steps = BuildSteps(StepProgress.silent(), plan(config, module_given=True))
        prepared = check_step(config, steps, Path(save_path), model)
        self.validation = prepared.validation
        return str(prepared.onnx_path)


class TensorRTOptimizer:
    """Builds a TensorRT engine (`model.plan`) from the ONNX export; needs TensorRT 10 and a GPU."""

    def __init__(self, config: ExportConfig | None = None, catalog: Catalog | None = None) -> None:
        self.config = (config or ExportConfig()).validate()
        self.catalog = catalog

    def optimize(
        self,
        onnx_path: str | Path,
        engine_path: str | Path,
        calibration_data: Batches | Callable[[], Batches] | None = None,
    ) -> str:
        """Parse, build with the config's profile and precision, write the engine and `<engine>.json`.

        int8 needs `calibration_data` (batches of packed encoder tensors, or a callable returning them);
        without it the catalog's synthetic histories are used.
        """
        from ugt_ensemble.export.tensorrt_build import build_engine
        from ugt_ensemble.export.tensorrt_plan import int8_calibration
        from ugt_ensemble.export.validate import catalog_data_for

        if not Path(onnx_path).is_file():
            raise MissingFileError(f"ONNX model {onnx_path}: no such file")
        batches = calibration_data() if callable(calibration_data) else calibration_data
        if batches is None and self.config.precision == "int8":
            index = (self.catalog or choose_catalog(self.config)).index()  # a baked model also gets no-rule tensors
            batches = int8_calibration(index, self.config, data=catalog_data_for(onnx_path, index))
        build_engine(onnx_path, engine_path, self.config, batches)
        return str(engine_path)


class TritonConfigGenerator:
    """Writes the Triton model repository (every config.pbtxt, the steps' model.py and runtime, the
    catalog, the model file) through the checked build, and returns the ensemble's config path."""

    def __init__(
        self,
        config: TritonConfig | None = None,
        export_config: ExportConfig | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.config = config or TritonConfig()
        self.export_config = export_config or ExportConfig()
        self.catalog = catalog

    def generate(
        self,
        model_repository: str | Path,
        model_file: str | Path | None = None,
        model: torch.nn.Module | None = None,
        engine_file: str | Path | None = None,
    ) -> str:
        """Write the repository serving `model_file` (an ONNX model step; validated against `model` when
        given) or `model` itself, with the TensorRT engine `engine_file` for tensorrt_plan."""
        build = BuildConfig(
            output_dir=Path(model_repository),
            export=self.export_config,
            triton=self.config,
            onnx_path=Path(model_file) if model_file else None,
            plan_path=Path(engine_file) if engine_file else None,
        )
        result = build_repository(build, model=model, catalog=self.catalog)
        return str(result.repository / self.export_config.model_name / "config.pbtxt")


def create_calibration_data_generator(
    num_samples: int = 100,
    batch_size: int = 32,
    seq_length: int = 512,
    codebook_sizes: tuple[int, int, int] = CODEBOOK_SIZES,
    catalog: Catalog | None = None,
    histories_file: str | Path | None = None,
    seed: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """INT8 calibration batches: ceil(num_samples / batch_size) packed (batch_size, seq_length) batches of
    histories over `catalog` (None: a synthetic catalog of `codebook_sizes`), or from `histories_file`."""
    catalog = catalog or synthetic_catalog(10_000, seed, codebook_sizes)
    batches = -(-num_samples // batch_size)
    return calibration_batches(catalog.index(), batch_size, seq_length, batches, histories_file, seed)
