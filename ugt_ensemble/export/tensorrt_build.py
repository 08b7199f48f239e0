"""Build a TensorRT engine (`model.plan`) from the exported ONNX with the TensorRT 10 Python API.

Needs the `tensorrt` package and a CUDA GPU; `require_tensorrt()` says in one line what is missing.
The decisions (profile, flags, fp32 layers, calibration data, metadata) come from `tensorrt_plan`,
where they are tested without a GPU. NOT RUN IN THIS PROJECT'S CI: no machine here has TensorRT.
A model step that honours the business rules is built from its baked ONNX file (`export.bake`), with a profile
over the rule inputs too (`ProfileShapes.for_model`); such an engine has never been built on a GPU here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from ugt_ensemble.config import ExportConfig
from ugt_ensemble.errors import ExportError, InputFileError, MissingDependencyError
from ugt_ensemble.export.tensorrt_plan import (
    PRECISION_FLAGS,
    EngineMetadata,
    ProfileShapes,
    file_sha256,
    fp32_node_names,
)  # fmt: skip

LOGGER = logging.getLogger(__name__)
CPU_ALTERNATIVE = (
    "on CPU use TritonConfig.cpu() with ExportConfig(precision='fp32') (CLI: build --target-server cpu-wheel)"
)


def require_tensorrt():  # noqa: ANN201 - the tensorrt module
    """The `tensorrt` module, or `MissingDependencyError` naming what is missing (package, GPU)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError(
            f"platform tensorrt_plan (--engine tensorrt) needs TensorRT 10 and an NVIDIA GPU, and this machine has "
            f"no TensorRT (pip install 'ugt-ensemble[tensorrt]'); {CPU_ALTERNATIVE}"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise MissingDependencyError(
            f"platform tensorrt_plan needs an NVIDIA GPU, and torch sees none; {CPU_ALTERNATIVE}"
        )
    if int(trt.__version__.split(".")[0]) < 10:
        raise MissingDependencyError(f"TensorRT {trt.__version__} found; ugt-ensemble needs TensorRT 10 or newer")
    return trt


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    config: ExportConfig,
    calibration: Iterable[dict[str, np.ndarray]] | None = None,
) -> EngineMetadata:
    """Parse `onnx_path`, build with the profile and precision of `config`, write the engine and its
    metadata (`<engine>.json`); reuses and updates the timing cache `config.timing_cache`."""
    trt = require_tensorrt()
    import torch

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    shapes = ProfileShapes.for_model(onnx_path, config)  # refuses a model that still takes the tables
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch always
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    build_config = builder.create_builder_config()
    build_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_bytes)
    _add_profile(trt, builder, build_config, shapes)
    pinned = _set_precision(trt, network, build_config, config.precision, fp32_node_names(onnx_path))
    if config.precision == "int8":
        build_config.int8_calibrator = _calibrator(trt, calibration, engine_path.with_suffix(".calib"))
    cache = _load_timing_cache(build_config, config.timing_cache)
    build_config.progress_monitor = _progress_monitor(trt)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, build_config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see the log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    _save_timing_cache(cache, config.timing_cache)
    metadata = EngineMetadata(
        tensorrt_version=trt.__version__,
        gpu=torch.cuda.get_device_name(0),
        precision=config.precision,
        profile=dataclasses.asdict(shapes),
        workspace_gb=config.workspace_size_gb,
        fp32_layers=pinned,
        onnx_sha256=file_sha256(onnx_path),
        build_seconds=round(time.perf_counter() - start, 1),
        timing_cache=str(config.timing_cache) if config.timing_cache else None,
    )
    metadata.write(engine_path)
    return metadata


def _add_profile(trt, builder, build_config, shapes: ProfileShapes) -> None:  # noqa: ANN001
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.inputs().items():
        profile.set_shape(name, low, opt, high)
    build_config.add_optimization_profile(profile)


def _set_precision(trt, network, build_config, precision: str, fp32_nodes: set[str]) -> int:  # noqa: ANN001
    """Set the builder flags; in reduced precision, pin the decoder's layers to fp32. Returns how many."""
    for flag in PRECISION_FLAGS[precision]:
        build_config.set_flag(getattr(trt.BuilderFlag, flag))
    if precision == "fp32":
        return 0
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if any(layer.name == n or layer.name.startswith(n + "_") for n in fp32_nodes):
            layer.precision = trt.float32
            pinned += 1
    LOGGER.info("kept %d decoder layers in fp32", pinned)
    return pinned


def _calibrator(trt, batches: Iterable[dict[str, np.ndarray]] | None, cache_path: Path):  # noqa: ANN001, ANN202
    import torch

    if batches is None:
        raise ExportError("an int8 build needs calibration batches")
    batches = list(batches)
    if not batches:
        raise InputFileError("int8 calibration got no batch: give at least one batch of histories")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.pending = iter(batches)
            self.device: dict[str, torch.Tensor] = {}

        def get_batch_size(self) -> int:
            return len(next(iter(batches[0].values())))

        def get_batch(self, names):  # noqa: ANN001, ANN202
            batch = next(self.pending, None)
            if batch is None:
                return None
            self.device = {n: torch.from_numpy(np.array(batch[n])).cuda() for n in names}  # encoder (+ rule) inputs
            return [int(self.device[n].data_ptr()) for n in names]

        def read_calibration_cache(self):  # noqa: ANN202
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:  # noqa: ANN001
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()


def _load_timing_cache(build_config, path: Path | None):  # noqa: ANN001, ANN202
    data = path.read_bytes() if path and path.is_file() else b""
    cache = build_config.create_timing_cache(data)
    build_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _save_timing_cache(cache, path: Path | None) -> None:  # noqa: ANN001
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(cache.serialize()))


def _progress_monitor(trt):  # noqa: ANN001, ANN202
    from tqdm import tqdm

    class Progress(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, tqdm] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:  # noqa: ANN001
            self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=False)

        def step_complete(self, phase_name, step) -> bool:  # noqa: ANN001
            self.bars[phase_name].update(1)
            return True

        def phase_finish(self, phase_name) -> None:  # noqa: ANN001
            self.bars.pop(phase_name).close()

    return Progress()
