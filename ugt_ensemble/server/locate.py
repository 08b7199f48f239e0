"""Find a tritonserver binary: the one on PATH, else the CPU build inside the nvidia-pytriton wheel.

The wheel ships `tritonserver`, the Python backend library, and one Python-backend stub per
Python version. `wheel_backend_dir` assembles a private backend directory whose stub matches the
running interpreter (the installed wheel is never modified).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from ugt_ensemble.errors import ServerError

STUB = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonInstall:
    """How to run one tritonserver: its binary, where its backends are, and extra environment."""

    executable: Path
    wheel_root: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.executable}" + (" (from the nvidia-pytriton wheel)" if self.wheel_root else "")


def locate_tritonserver() -> TritonInstall:
    """The tritonserver on PATH, else the one in the nvidia-pytriton wheel; `ServerError` if neither."""
    on_path = shutil.which("tritonserver")
    if on_path and Path(on_path).resolve().parent.parent.parent.name != "pytriton":  # the wheel's, put on PATH by `env`
        return TritonInstall(Path(on_path), env=_python_env())
    spec = importlib.util.find_spec("pytriton")
    if spec and spec.submodule_search_locations:
        root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
        executable = root / "bin" / "tritonserver"
        if executable.is_file():
            return TritonInstall(executable, wheel_root=root, env=_wheel_env(root))
    raise ServerError(
        "no tritonserver found: put one on PATH (e.g. in NVIDIA's Triton container) or "
        "install the CPU build with: pip install 'ugt-ensemble[serve]'"
    )


def wheel_backend_dir(install: TritonInstall, target: Path) -> Path:
    """Build `target`/python with the wheel's Python backend and the stub for this Python."""
    assert install.wheel_root is not None
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = install.wheel_root / "python_backend_stubs" / version / STUB
    if not stub.is_file():
        raise ServerError(
            f"the nvidia-pytriton wheel at {install.wheel_root} has no Python-backend stub for "
            f"Python {version}; use a Python it supports"
        )
    python_dir = target / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    source_dir = install.wheel_root / "backends" / "python"
    for source in [*source_dir.iterdir(), stub]:
        if source.name != "__pycache__":
            link = python_dir / source.name
            if not link.exists():
                link.symlink_to(source)
    return target


def _wheel_env(root: Path) -> dict[str, str]:
    """LD_LIBRARY_PATH for the wheel's bundled libraries and this interpreter's libpython."""
    libs = root.parent.parent / "nvidia_pytriton.libs"
    paths = [str(libs), sysconfig.get_config_var("LIBDIR") or ""]
    existing = os.environ.get("LD_LIBRARY_PATH")
    env = {"LD_LIBRARY_PATH": os.pathsep.join(p for p in [*paths, existing] if p)}
    env.update(_python_env())
    return env


def _python_env() -> dict[str, str]:
    """Put this interpreter first on PATH: the Python-backend stub finds its environment (and the
    packages the models import, numpy and onnxruntime) through it."""
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
