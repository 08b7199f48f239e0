"""The Python API: configs, `ServingExporter`, the component classes, the benchmark and the
convenience functions. Each is a thin face over the one implementation of its step (the CLI uses the same)."""

from ugt_ensemble.api.components import (
    ONNXExporter,
    TensorRTOptimizer,
    TritonConfigGenerator,
    create_calibration_data_generator,
)
from ugt_ensemble.api.exporter import ServingExporter, ServingExporterInterface
from ugt_ensemble.api.functions import (
    build_trt_engine,
    create_exporter,
    export_to_onnx,
    generate_triton_config,
    run_benchmark,
)

__all__ = [
    "ONNXExporter",
    "ServingExporter",
    "ServingExporterInterface",
    "TensorRTOptimizer",
    "TritonConfigGenerator",
    "build_trt_engine",
    "create_calibration_data_generator",
    "create_exporter",
    "export_to_onnx",
    "generate_triton_config",
    "run_benchmark",
]
