"""Which kind of tritonserver can load a repository, read from its configs and its Python models' imports.

- "cpu-wheel": the CPU tritonserver of the nvidia-pytriton wheel: Python backend and ensembles only, no
  GPU instances; its Python is this package's, so numpy and onnxruntime are there.
- "ngc": NVIDIA's tritonserver container: every backend this package emits, but its Python has numpy
  and the standard library only (no onnxruntime, no torch), unless a model ships an execution
  environment (`EXECUTION_ENV_PATH`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

#: Top-level modules the Python of each server kind has, beyond the standard library.
SERVER_PYTHON = {
    "cpu-wheel": {"numpy", "triton_python_backend_utils", "onnxruntime", "orjson", "torch", "ugt_ensemble"},
    "ngc": {"numpy", "triton_python_backend_utils"},
}
NATIVE_PLATFORMS = {"tensorrt_plan", "onnxruntime_onnx"}


def loadable_on(root: Path, configs: dict[str, mc.ModelConfig]) -> dict[str, list[str]]:
    """server kind -> the reasons it cannot load the repository (an empty list: it can)."""
    reasons: dict[str, list[str]] = {kind: [] for kind in SERVER_PYTHON}
    for name, config in sorted(configs.items()):
        platform = config.platform or config.backend
        if platform in NATIVE_PLATFORMS or config.backend in ("onnxruntime", "tensorrt"):
            reasons["cpu-wheel"].append(f"{name}: platform {platform} (the CPU wheel has the Python backend only)")
        if any(group.kind == mc.ModelInstanceGroup.KIND_GPU for group in config.instance_group):
            reasons["cpu-wheel"].append(f"{name}: a KIND_GPU instance group")
        if config.backend == "python":
            has_env = "EXECUTION_ENV_PATH" in config.parameters
            for folder in sorted(p for p in (root / name).iterdir() if p.is_dir() and p.name.isdigit()):
                missing = _imports(folder) - set(sys.stdlib_module_names)
                for kind, available in SERVER_PYTHON.items():
                    absent = sorted(missing - available - _local_modules(folder))
                    if absent and not (kind == "ngc" and has_env):
                        reasons[kind].append(f"{name}/{folder.name}: imports {', '.join(absent)}")
    return reasons


def _local_modules(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}


def _imports(folder: Path) -> set[str]:
    """Top-level modules that the Python files of a version folder need (optional imports left out)."""
    needed: set[str] = set()
    for path in folder.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        optional = {id(n) for node in ast.walk(tree) if isinstance(node, ast.Try) and _catches_import_error(node)
                    for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}  # fmt: skip
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                needed |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                needed.add(node.module.split(".")[0])
    return needed


def _catches_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {k.id for k in kinds if isinstance(k, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})
