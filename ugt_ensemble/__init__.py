"""ugt-ensemble: serve a generative recommender on NVIDIA Triton as a three-step ensemble.

The Python API (`from ugt_ensemble import ServingExporter, ExportConfig, ...`) is imported
lazily, so the command line stays quick for commands that need no torch.
"""

from __future__ import annotations

from ugt_ensemble.lazy import lazy_getattr

__version__ = "0.2.0"

_API = {
    **dict.fromkeys(
        (
            "ServingExporter",
            "ServingExporterInterface",
            "ONNXExporter",
            "TensorRTOptimizer",
            "TritonConfigGenerator",
            "create_calibration_data_generator",
            "create_exporter",
            "export_to_onnx",
            "build_trt_engine",
            "generate_triton_config",
            "run_benchmark",
        ),
        "ugt_ensemble.api",
    ),
    "TritonBenchmark": "ugt_ensemble.api.benchmark",
    "BenchmarkResult": "ugt_ensemble.client.load_results",
    **dict.fromkeys(
        ("ExportConfig", "TritonConfig", "BenchmarkConfig", "BuildConfig", "UGTConfig"), "ugt_ensemble.config"
    ),
    "validate_deployment": "ugt_ensemble.repository.deployment",
    "build_repository": "ugt_ensemble.build",
    **dict.fromkeys(("ConstrainedRecommender", "PerLevelScorer", "CandidateHead"), "ugt_ensemble.model.constrained"),
    "save_step_model": "ugt_ensemble.model.sources",
    **dict.fromkeys(("Catalog", "load_catalog", "synthetic_catalog"), "ugt_ensemble.catalog"),
    "RecommendClient": "ugt_ensemble.client.grpc_client",
    "TritonServer": "ugt_ensemble.server",
}
__all__ = sorted(_API) + ["__version__"]

__getattr__ = lazy_getattr(__name__, _API)
