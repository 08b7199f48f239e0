"""`python -m ugt_ensemble env`: the exports for a bare tritonserver and perf_analyzer on the CPU wheels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server import locate_tritonserver
from ugt_ensemble.tools.environment import tool_environment


@pytest.fixture(scope="module")
def wheel():
    try:
        install = locate_tritonserver()
    except ServerError as exc:
        pytest.skip(str(exc))
    if install.wheel_root is None:
        pytest.skip("not the nvidia-pytriton wheel's tritonserver")
    return install


def test_env_prints_what_a_bare_tritonserver_and_perf_analyzer_need(wheel, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ugt_ensemble", "env", "--json", "--backend-dir", str(tmp_path / "backends")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    env = json.loads(done.stdout)
    assert env["PATH"].split(":")[:2] == [str(Path(sys.executable).parent), str(wheel.executable.parent)]
    libraries = env["LD_LIBRARY_PATH"].split(":")
    assert any(p.endswith("nvidia_pytriton.libs") for p in libraries)
    assert any((Path(p) / "libcudart.so.12").exists() for p in libraries)  # perf_analyzer's missing library
    backend = Path(env["UGT_TRITON_BACKEND_DIR"]) / "python"
    assert (backend / "libtriton_python.so").exists() and (backend / "triton_python_backend_stub").exists()


def test_the_shell_form_sets_the_same_variables(wheel, tmp_path):
    exports = tool_environment(tmp_path / "backends").shell_exports()
    echo = 'echo "$PATH|$LD_LIBRARY_PATH|$UGT_TRITON_BACKEND_DIR"'
    script = f"PATH=/usr/bin:/bin; unset LD_LIBRARY_PATH; {exports}\n{echo}"
    path, libraries, backend = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip().split("|")
    assert path.endswith(":/usr/bin:/bin") and path.startswith(str(Path(sys.executable).parent))
    assert "cuda_runtime/lib" in libraries and not libraries.endswith(":")
    assert backend == str(tmp_path / "backends")


def test_the_wheels_tritonserver_on_path_is_still_run_as_the_wheels(wheel, monkeypatch):
    monkeypatch.setenv("PATH", f"{wheel.executable.parent}:/usr/bin:/bin")  # what `eval "$(... env)"` leaves
    found = locate_tritonserver()
    assert found.wheel_root == wheel.wheel_root and "LD_LIBRARY_PATH" in found.env
