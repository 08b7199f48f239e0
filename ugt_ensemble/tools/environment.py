"""The environment of the CPU wheels' tools: what `python -m ugt_ensemble env` prints.

The nvidia-pytriton wheel's `tritonserver` needs a backend directory whose Python-backend stub matches
this interpreter (`--backend-directory`), its bundled libraries and libpython on LD_LIBRARY_PATH, and
this venv's `bin/` first on PATH (the stub finds numpy and onnxruntime through it). tritonclient's
`perf_analyzer` needs `libcudart.so.12` from nvidia-cuda-runtime-cu12 on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.server.locate import TritonInstall, locate_tritonserver, wheel_backend_dir

#: The variable that names the backend directory in the printed exports.
BACKEND_DIR_VAR = "UGT_TRITON_BACKEND_DIR"


@dataclass(frozen=True)
class ToolEnvironment:
    """Where the tools are and what they need on top of the caller's environment."""

    tritonserver: Path
    backend_dir: Path | None  # None: the server's own default (a tritonserver not from the wheel)
    path: tuple[str, ...]  # folders put first on PATH
    library_path: tuple[str, ...]  # folders put first on LD_LIBRARY_PATH

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with PATH and LD_LIBRARY_PATH extended, and the backend variable."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = _join(self.path, env.get("PATH"))
        if self.library_path:
            env["LD_LIBRARY_PATH"] = _join(self.library_path, env.get("LD_LIBRARY_PATH"))
        if self.backend_dir is not None:
            env[BACKEND_DIR_VAR] = str(self.backend_dir)
        return env

    def server_args(self) -> list[str]:
        """The tritonserver flags the environment implies (the backend directory)."""
        return [f"--backend-directory={self.backend_dir}"] if self.backend_dir is not None else []

    def shell_exports(self) -> str:
        """POSIX shell lines for `eval "$(python -m ugt_ensemble env)"`."""
        lines = [f'export PATH={_quoted(self.path)}"${{PATH:+:$PATH}}"']
        if self.library_path:
            rest = '"${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"'
            lines.append(f"export LD_LIBRARY_PATH={_quoted(self.library_path)}{rest}")
        if self.backend_dir is not None:
            lines.append(f"export {BACKEND_DIR_VAR}={shlex.quote(str(self.backend_dir))}")
        return "\n".join(lines) + "\n"


def default_backend_dir() -> Path:
    """A backend directory that lives as long as this environment: <sys.prefix>/var/ugt-ensemble/backends."""
    return Path(sys.prefix) / "var" / "ugt-ensemble" / "backends"


def tool_environment(backend_dir: Path | None = None, install: TritonInstall | None = None) -> ToolEnvironment:
    """The environment of this interpreter's tools; creates the wheel's backend directory when needed."""
    install = install or locate_tritonserver()
    library_path: list[str] = []
    directory = None
    if install.wheel_root is not None:
        directory = wheel_backend_dir(install, (backend_dir or default_backend_dir()).absolute())
        library_path += _split(install.env.get("LD_LIBRARY_PATH", ""))
    library_path += cuda_runtime_libs()
    inherited = set(_split(os.environ.get("LD_LIBRARY_PATH", "")))
    path = [str(Path(sys.executable).parent), str(install.executable.parent)]
    return ToolEnvironment(
        tritonserver=install.executable,
        backend_dir=directory,
        path=tuple(dict.fromkeys(path)),
        library_path=tuple(p for p in dict.fromkeys(library_path) if p not in inherited),
    )


def cuda_runtime_libs() -> list[str]:
    """The lib/ folders of nvidia-cuda-runtime-cu12 (libcudart.so.12, which perf_analyzer links)."""
    try:
        roots = list(importlib.util.find_spec("nvidia").submodule_search_locations or [])
    except (AttributeError, ImportError, ValueError):  # no `nvidia` namespace package
        return []
    return [str(lib) for lib in (Path(root) / "cuda_runtime" / "lib" for root in roots) if lib.is_dir()]


def _split(value: str) -> list[str]:
    return [part for part in value.split(os.pathsep) if part]


def _join(first: tuple[str, ...], rest: str | None) -> str:
    return os.pathsep.join(dict.fromkeys([*first, *_split(rest or "")]))


def _quoted(parts: tuple[str, ...]) -> str:
    return shlex.quote(os.pathsep.join(parts))
