"""Typed configuration, checked on construction: the seeds' `ExportConfig`, `TritonConfig` and
`BenchmarkConfig` (their field names and defaults first, then ours), the reference model's `UGTConfig`,
and `BuildConfig`, which bundles them for `build` and checks them against each other."""

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
    "TritonConfig",
    "UGTConfig",
    "parse_version_policy",
    "require_model_name",
    "resolve_target_server",
    "target_server_settings",
    "tensorrt_available",
]
