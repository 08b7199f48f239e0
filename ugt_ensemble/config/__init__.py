"""Typed configuration, checked on construction: `ExportConfig`, `TritonConfig` and
`BenchmarkConfig` (the core API's field names and defaults first, then ours), one config per step of the ensemble
(`PreprocessConfig`, `ModelStepConfig`, `PostprocessConfig`, each with its `QueuePolicy`; held by
`TritonConfig`), the reference model's `UGTConfig`, and `BuildConfig`, which bundles them for `build`,
checks them against each other and composes each step's adapter parameters."""

from ugt_ensemble.config.benchmark import BENCH_TARGETS, BenchmarkConfig
from ugt_ensemble.config.build import (
    TARGET_SERVERS,
    BuildConfig,
    resolve_target_server,
    target_server_settings,
    tensorrt_available,
)
from ugt_ensemble.config.checks import require_model_name
from ugt_ensemble.config.export import DEFAULT_TIMING_CACHE, PRECISIONS, ExportConfig
from ugt_ensemble.config.model import UGTConfig
from ugt_ensemble.config.steps import (
    STEP_FIELDS,
    ModelStepConfig,
    PostprocessConfig,
    PreprocessConfig,
    QueuePolicy,
)
from ugt_ensemble.config.triton import ENGINES, PLATFORMS, TritonConfig, parse_version_policy

__all__ = [
    "BENCH_TARGETS",
    "DEFAULT_TIMING_CACHE",
    "ENGINES",
    "PLATFORMS",
    "PRECISIONS",
    "TARGET_SERVERS",
    "BenchmarkConfig",
    "BuildConfig",
    "ExportConfig",
    "ModelStepConfig",
    "PostprocessConfig",
    "PreprocessConfig",
    "QueuePolicy",
    "STEP_FIELDS",
    "TritonConfig",
    "UGTConfig",
    "parse_version_policy",
    "require_model_name",
    "resolve_target_server",
    "target_server_settings",
    "tensorrt_available",
]
