"""Triton Model Analyzer on a built repository: its config, written for the CPU wheels, and its run.

`write_config` fills in what `model-analyzer profile` needs in local launch mode on this server: the
wheel's tritonserver, the Python backend directory, PATH / LD_LIBRARY_PATH (`tools.environment`), the
perf_analyzer input data of real histories (`repository.input_data`), free loopback ports and a short quick
search. The local tritonserver it starts listens on 127.0.0.1 only and has no operator key: Model
Analyzer loads and unloads its candidate configs through the repository API and sends no header.
Everything it writes goes to `<repository>_tools/model_analyzer/`, outside the model repository.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import yaml

from ugt_ensemble.errors import MissingDependencyError, UgtEnsembleError
from ugt_ensemble.repository.input_data import input_data_files, tools_dir, write_input_data_files
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.server.orphans import SHM_DIR, mapped_regions, regions_with_prefix
from ugt_ensemble.server.process import Ports
from ugt_ensemble.tools.analyzer_progress import AnalyzerProgress, search_space
from ugt_ensemble.tools.environment import ToolEnvironment, tool_environment
from ugt_ensemble.tools.process_tree import ProcessTree

LOGGER = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
#: Start of the /dev/shm region names of the stubs of an `analyze` run.
SHM_PREFIX = "ugt_analyze_"


@dataclass(frozen=True)
class AnalyzerSearch:
    """How much Model Analyzer's quick search tries (defaults keep a CPU run to a few minutes)."""

    max_concurrency: int = 4
    max_instance_count: int = 2
    max_model_batch_size: int = 8
    measurement_ms: int = 1000
    timeout_s: int = 300  # perf_analyzer_timeout of one measurement


@dataclass(frozen=True)
class AnalyzerRun:
    """What `profile` produced."""

    config: Path
    export_path: Path
    reports: list[Path]
    seconds: float
    log: Path


def analyzer_dir(repository: str | Path) -> Path:
    """Where the config and results of `repository` go: `<repository>_tools/model_analyzer/`."""
    return tools_dir(repository) / "model_analyzer"


def analyzer_config(
    repository: str | Path,
    environment: ToolEnvironment,
    search: AnalyzerSearch = AnalyzerSearch(),
    ports: Ports | None = None,
) -> dict:
    """The `model-analyzer profile` config (a dict for YAML) for the ensemble of `repository`."""
    info = RepositoryInfo.read(repository)
    out, ports = analyzer_dir(repository), ports or Ports.free(LOOPBACK)
    env = environment.environ()
    flags = {"http-address": LOOPBACK, "grpc-address": LOOPBACK, "metrics-address": LOOPBACK}
    # Regions of this run's stubs under a prefix of their own: removed if a stop has to kill them (`profile`).
    flags["backend-config"] = f"python,shm-region-prefix-name={SHM_PREFIX}{secrets.token_hex(4)}_"
    if environment.backend_dir is not None:
        flags["backend-directory"] = str(environment.backend_dir)
    return {
        "model_repository": str(Path(repository).absolute()),
        "profile_models": [info.ensemble],
        "cpu_only_composing_models": [info.preprocess, info.model_step, info.postprocess],
        "run_config_search_mode": "quick",
        "run_config_search_max_concurrency": search.max_concurrency,
        "run_config_search_max_instance_count": search.max_instance_count,
        "run_config_search_max_model_batch_size": search.max_model_batch_size,
        "triton_launch_mode": "local",
        "triton_server_path": str(environment.tritonserver),
        "triton_server_flags": flags,
        "triton_server_environment": {key: env[key] for key in ("PATH", "LD_LIBRARY_PATH") if key in env},
        "triton_http_endpoint": f"{LOOPBACK}:{ports.http}",
        "triton_grpc_endpoint": f"{LOOPBACK}:{ports.grpc}",
        "triton_metrics_url": f"http://{LOOPBACK}:{ports.metrics}/metrics",
        "triton_output_path": str(out / "tritonserver.log"),
        "perf_analyzer_path": _perf_analyzer(environment),
        "perf_analyzer_flags": {
            "input-data": str(input_data_files(repository, info).ensemble),
            "measurement-interval": search.measurement_ms,
        },
        "perf_analyzer_timeout": search.timeout_s,
        "output_model_repository_path": str(out / "output_model_repository"),
        "override_output_model_repository": True,
        "checkpoint_directory": str(out / "checkpoints"),
        "export_path": str(out / "results"),
    }


def write_config(
    repository: str | Path, search: AnalyzerSearch = AnalyzerSearch(), environment: ToolEnvironment | None = None
) -> Path:
    """Write `<repository>_tools/model_analyzer/config.yaml` (and the input data if it is missing)."""
    if not input_data_files(repository).ensemble.is_file():
        write_input_data_files(repository)
    config = analyzer_config(repository, environment or tool_environment(), search)
    path = analyzer_dir(repository) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def profile(
    config_path: Path,
    environment: ToolEnvironment | None = None,
    timeout_s: float = 3600,
    on_progress: Callable[[str], None] | None = None,
    search: AnalyzerSearch = AnalyzerSearch(),
) -> AnalyzerRun:
    """Run `model-analyzer profile -f config_path` to the end; its reports. `UgtEnsembleError` if it fails.

    `on_progress` gets a line for each configuration, measurement and phase (`tools.analyzer_progress`). On
    SIGINT or SIGTERM, a timeout or any error, every process it started (Model Analyzer, its tritonserver and
    stubs, perf_analyzer) is stopped (`tools.process_tree`) before `AnalyzerStopped` or the error is raised."""
    environment = environment or tool_environment()
    executable = _model_analyzer()
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    export_path = Path(config["export_path"])
    export_path.mkdir(parents=True, exist_ok=True)
    log = config_path.parent / "model_analyzer.log"
    started = time.monotonic()
    space = search_space(search.max_instance_count, search.max_model_batch_size)
    progress = AnalyzerProgress(log, space, config["profile_models"][0])
    with log.open("w", encoding="utf-8") as out, _stop_signals():
        process = subprocess.Popen(
            [executable, "profile", "-f", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment.environ(),
            start_new_session=True,  # a terminal's Ctrl-C reaches us only: we stop the whole tree
        )
        tree = ProcessTree(process.pid)
        try:
            while process.poll() is None:
                if time.monotonic() - started > timeout_s:
                    raise UgtEnsembleError(f"model-analyzer did not finish in {timeout_s:.0f} s (log: {log})")
                _report(progress, on_progress, started)
                tree.track()
                time.sleep(0.5)
        except BaseException:
            stopped = tree.stop()
            _report(progress, on_progress, started)
            LOGGER.warning("stopped model-analyzer and the processes it had started (%d in all)", stopped)
            raise
        finally:
            tree.close()
            _remove_regions(config.get("triton_server_flags", {}))
    _report(progress, on_progress, started)
    seconds = time.monotonic() - started
    reports = sorted(p for p in export_path.rglob("*") if p.is_file() and p.parent.name != "checkpoints")
    if process.returncode != 0:
        raise UgtEnsembleError(f"model-analyzer failed with exit code {process.returncode}:\n{_tail(log)}")
    return AnalyzerRun(config_path, export_path, reports, seconds, log)


class AnalyzerStopped(UgtEnsembleError):
    """`profile` was stopped by SIGINT or SIGTERM (everything it started is stopped too)."""


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `AnalyzerStopped` in the main thread while the block runs."""

    def stop(signum: int, frame: object) -> None:
        raise AnalyzerStopped(f"stopped by {signal.Signals(signum).name}; the processes it had started are stopped")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_regions(flags: dict) -> None:
    """Delete the /dev/shm regions of this run's stubs that no process maps (stubs killed on a stop leave them)."""
    prefix = str(flags.get("backend-config", "")).partition("shm-region-prefix-name=")[2]
    if prefix.startswith(SHM_PREFIX):
        for name in sorted(set(regions_with_prefix(prefix)) - mapped_regions()):
            (SHM_DIR / name).unlink(missing_ok=True)


def _report(progress: AnalyzerProgress, on_progress: Callable[[str], None] | None, started: float) -> None:
    for line in progress.poll():
        if on_progress is not None:
            on_progress(f"[{time.monotonic() - started:5.0f} s] {line}")


def _model_analyzer() -> str:
    found = [Path(sys.executable).parent / "model-analyzer", shutil.which("model-analyzer")]
    for candidate in found:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise MissingDependencyError(
        "model-analyzer not found next to this Python or on PATH: pip install 'ugt-ensemble[analyze]' "
        "(triton-model-analyzer==1.44.0), or run scripts/setup.sh"
    )


def _perf_analyzer(environment: ToolEnvironment) -> str:
    for folder in environment.path:
        if (Path(folder) / "perf_analyzer").is_file():
            return str(Path(folder) / "perf_analyzer")
    return shutil.which("perf_analyzer") or "perf_analyzer"


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
