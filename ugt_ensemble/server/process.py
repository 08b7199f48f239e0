"""`TritonServer`: run a real tritonserver on a model repository as a context manager.

Picks free ports (unless given), waits until the server and the named models are ready, notices
an early exit and shows the log's tail, demands an operator key for the server-changing APIs
(`ugt_ensemble.server.operator_key`), stops with SIGINT then SIGKILL after `GRACEFUL_STOP_S` (a server whose
load is stuck ignores SIGINT: measured still running 30 s later), and (on Linux) is killed with SIGKILL when
the thread that started it dies, so that it never outlives `serve` (its stubs then exit by themselves; what
they leave is swept by the next `serve`, `server.sweep`). Its temporary folder carries the pid of the
process that made it (`ugt-triton-<pid>-*`), so that a sweep can tell a dead owner's folder.
"""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server.locate import TritonInstall, locate_tritonserver, wheel_backend_dir
from ugt_ensemble.server.operator_key import OperatorKey
from ugt_ensemble.server.orphans import PREFIX_FLAG, clean_up_after, new_shm_prefix, shm_prefix_args

LOGGER = logging.getLogger(__name__)
#: The temporary folder of a server (its backend directory, its default log): `<prefix><owner pid>-<random>`.
WORKDIR_PREFIX = "ugt-triton-"
#: Seconds a stop waits for tritonserver after SIGINT before SIGKILL (`serve` must stop within 10 s).
GRACEFUL_STOP_S = 5.0
#: Every config a build writes is complete: without this flag the Python backend starts one more stub per model
#: load only to ask model.py to complete its config (measured: ~1 s of a data-only switch's 2.3 s of loads).
NO_AUTO_COMPLETE = "--disable-auto-complete-config"


@dataclass(frozen=True)
class Ports:
    """HTTP, gRPC and metrics ports."""

    http: int
    grpc: int
    metrics: int

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> Ports:
        """Three distinct ports that are free on `host` right now."""
        sockets = [socket.socket() for _ in range(3)]
        try:
            for s in sockets:
                s.bind((host, 0))
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for s in sockets:
                s.close()


class TritonServer:
    """A tritonserver process serving `model_repository`.

    Use as `with TritonServer(repo, ready_models=["ugt_recommend"]) as server: server.grpc_url`.
    """

    def __init__(
        self,
        model_repository: str | Path,
        ports: Ports | None = None,
        host: str = "127.0.0.1",
        ready_models: tuple[str, ...] | list[str] = (),
        startup_timeout_s: float = 180.0,
        log_path: str | Path | None = None,
        extra_args: tuple[str, ...] = (),
        install: TritonInstall | None = None,
        operator_key: OperatorKey | None = None,
        restrict_api: bool = True,
    ) -> None:
        self.model_repository = Path(model_repository).absolute()
        self.host = host
        self.ports = ports or Ports.free(host)
        self.ready_models = tuple(ready_models)
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = tuple(extra_args)
        #: The Python backend's region prefix: the caller's, else one of this server's own, so that leaving the
        #: context removes whatever regions and stubs a fault left (tests kill stubs on purpose).
        self.shm_prefix = next(
            (a.removeprefix(PREFIX_FLAG) for a in self.extra_args if a.startswith(PREFIX_FLAG)), None
        )
        if self.shm_prefix is None:
            self.shm_prefix = new_shm_prefix()
            self.extra_args += shm_prefix_args(self.shm_prefix)
        self.install = install or locate_tritonserver()
        self._workdir = tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
        self.log_path = Path(log_path) if log_path else Path(self._workdir.name) / "tritonserver.log"
        self.process: subprocess.Popen | None = None
        #: The key for the server-changing APIs (a fresh random one unless given); None: unrestricted.
        self.operator_key: OperatorKey | None = None
        if restrict_api:
            self.operator_key = operator_key or OperatorKey(secrets.token_urlsafe(32), "generated for this server")

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://{self._client_host}:{self.ports.http}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.ports.metrics}/metrics"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def command(self) -> list[str]:
        """The tritonserver command line."""
        command = [str(self.install.executable), f"--model-repository={self.model_repository}"]
        if self.install.wheel_root is not None:
            backends = wheel_backend_dir(self.install, Path(self._workdir.name) / "backends")
            command.append(f"--backend-directory={backends}")
        for kind, port in (("http", self.ports.http), ("grpc", self.ports.grpc), ("metrics", self.ports.metrics)):
            command += [f"--{kind}-port={port}", f"--{kind}-address={self.host}"]
        restrictions = self.operator_key.server_args() if self.operator_key is not None else ()
        complete = () if NO_AUTO_COMPLETE in self.extra_args else (NO_AUTO_COMPLETE,)
        return command + ["--exit-timeout-secs=10", *complete, *restrictions, *self.extra_args]

    def grpc_operator_headers(self) -> dict[str, str]:
        """gRPC metadata for the restricted APIs (load/unload, logging, trace, shared memory); {} if unrestricted."""
        return self.operator_key.grpc_headers() if self.operator_key is not None else {}

    def http_operator_headers(self) -> dict[str, str]:
        """HTTP headers for the restricted APIs; {} if unrestricted."""
        return self.operator_key.http_headers() if self.operator_key is not None else {}

    def start(self) -> TritonServer:
        """Start the server and wait until it and `ready_models` are ready."""
        if not self.model_repository.is_dir():
            raise ServerError(
                f"model repository {self.model_repository} does not exist; run `python -m ugt_ensemble build`"
            )
        env = {**os.environ, **self.install.env}
        LOGGER.debug("starting %s", " ".join(self.command()))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, models: Sequence[str]) -> None:
        """Wait until the server and `models` are ready (up to `startup_timeout_s`); ServerError with the log's tail."""
        self._wait_ready(models)

    def _wait_ready(self, models: Sequence[str] | None = None) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        ready = self.ready_models if models is None else models
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in ready)]
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerError(f"tritonserver exited with code {code} while starting:\n{self.log_tail()}")
            if all(_http_ok(self.http_url + path) for path in paths):
                return
            time.sleep(0.25)
        raise ServerError(f"tritonserver was not ready after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = GRACEFUL_STOP_S) -> int | None:
        """SIGINT (graceful: models unload), then SIGKILL after `timeout_s`. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                LOGGER.warning("tritonserver did not stop in %.0f s; killing it", timeout_s)
                self.process.kill()
                try:
                    self.process.wait(5.0)
                except subprocess.TimeoutExpired:  # uninterruptible (D state): reaped by whoever waits next
                    LOGGER.error("tritonserver (pid %d) did not die 5 s after SIGKILL", self.process.pid)
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self.process is not None:
            clean_up_after(self.process.pid, self.shm_prefix)
        self._workdir.cleanup()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def die_with_parent() -> None:
    """In the child: receive SIGKILL when the parent (thread) dies (Linux prctl PR_SET_PDEATHSIG); SIGTERM would
    start a graceful stop, which a server with a stuck load never finishes."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass
