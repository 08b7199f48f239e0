"""A repository built for NVIDIA's container needs nothing installed there; the default build needs the CPU server.

Both repositories are real builds (a tiny model and catalog, so they take seconds). The ngc check reads
the files directly, independently of `repository.servers`: every model's backend / platform must be
one NVIDIA's tritonserver image ships, and every module any Python file of a Python-backend model
imports must be the standard library, numpy, Triton's own `triton_python_backend_utils`, a module of
that version folder, or optional (imported inside `try: ... except ImportError`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.rules import check_repository

#: Backends and platforms of NVIDIA's tritonserver image (without TensorRT at build time: no tensorrt_plan).
NGC_BACKENDS = {"ensemble", "python", "onnxruntime_onnx", "onnxruntime", "tensorrt_plan", "tensorrt"}
#: What the Python of NVIDIA's image has beyond the standard library.
NGC_PYTHON = {"numpy", "triton_python_backend_utils"}


def build_for(target: str, root: Path, tiny_config) -> Path:
    export, triton = target_server_settings(target)
    config = BuildConfig(
        output_dir=root / target,
        model_config=tiny_config,
        synthetic_items=500,
        seed=2,
        export=ExportConfig(**{**export, "max_seq_length": 128, "validation_shapes": ((1, 1), (2, 16))}),
        triton=triton,
        target_server=target,
    )
    return build_repository(config).repository


@pytest.fixture(scope="module")
def repositories(tmp_path_factory, tiny_config) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("targets")
    return {target: build_for(target, root, tiny_config) for target in ("ngc", "cpu-wheel")}


def imports_needed(path: Path) -> set[str]:
    """Top-level modules a Python file imports, leaving out relative and optional (ImportError-guarded) ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if any("ImportError" in c or "ModuleNotFoundError" in c for c in caught):
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    needed = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            needed |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            needed.add(node.module.split(".")[0])
    return needed


def test_the_ngc_build_needs_nothing_installed_in_nvidias_container(repositories):
    root = repositories["ngc"]
    report = check_repository(root)
    assert report.valid, report.errors
    python_models = []
    for name, config in report.configs.items():
        kind = config.platform or config.backend
        assert kind in NGC_BACKENDS, f"{name}: {kind}"
        assert "EXECUTION_ENV_PATH" not in config.parameters, name  # no environment shipped either
        if config.backend == "python":
            python_models.append(name)
    step = report.configs["ugt_trt"]
    assert step.platform == "onnxruntime_onnx" and not (root / "ugt_trt" / "1" / "model.py").exists()
    assert sorted(python_models) == ["postprocess", "preprocess"]
    for name in python_models:
        for folder in sorted(p for p in (root / name).iterdir() if p.is_dir() and p.name.isdigit()):
            local = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}
            files = sorted(folder.rglob("*.py"))
            assert files, folder
            for path in files:
                missing = imports_needed(path) - set(sys.stdlib_module_names) - NGC_PYTHON - local
                assert not missing, f"{path.relative_to(root)} imports {sorted(missing)}"
    result = validate_deployment(root)
    assert result["valid"], result["errors"]
    assert result["info"]["loadable_on"]["ngc"] == []
    assert result["info"]["build"]["target_server"] == "ngc"


def test_the_ngc_build_is_not_for_the_cpu_wheel(repositories):
    reasons = validate_deployment(repositories["ngc"])["info"]["loadable_on"]["cpu-wheel"]
    assert any("onnxruntime_onnx" in r for r in reasons), reasons


def test_the_default_cpu_build_loads_on_the_cpu_wheel_and_not_on_ngc(repositories):
    result = validate_deployment(repositories["cpu-wheel"])
    assert result["valid"], result["errors"]
    loadable = result["info"]["loadable_on"]
    assert loadable["cpu-wheel"] == []
    assert loadable["ngc"] == ["ugt_trt/1: imports onnxruntime"]
    step_files = (repositories["cpu-wheel"] / "ugt_trt" / "1").rglob("*.py")
    assert any("onnxruntime" in imports_needed(path) for path in step_files)


def test_onnx_runtime_builds_ask_opset_20_and_tensorrt_keeps_the_seeds_17():
    """ONNX Runtime fuses Gelu only from opset 20 (measured 10-19 % faster on CPU); TensorRT keeps 17."""
    from ugt_ensemble.config import ExportConfig, target_server_settings

    assert target_server_settings("cpu-wheel")[0]["opset_version"] == 20
    assert target_server_settings("ngc", "onnxruntime-backend")[0]["opset_version"] == 20
    assert "opset_version" not in target_server_settings("ngc", "tensorrt")[0]
    assert ExportConfig().opset_version == 17
