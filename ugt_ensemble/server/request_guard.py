"""The request guard: `serve`'s public HTTP and gRPC ports, bounding every request before tritonserver reads it.

tritonserver 2.51 inflates compressed request bodies (HTTP `Content-Encoding: gzip`/`deflate`, gRPC message
compression) whole and has no flag to bound them, so `serve` puts tritonserver on loopback ports of its own and
this guard on the ports clients use (`guard_http`, `guard_grpc`): a compressed HTTP body is refused (415), an HTTP
body or gRPC message above `max_request_bytes` is refused (413 / RESOURCE_EXHAUSTED) before it is inflated, and
everything else is relayed as it is. The metrics port is relayed by the HTTP half too, so that tritonserver
itself listens on loopback only.

The guard runs in a process of its own (`python -m ugt_ensemble.server.request_guard`), so that it shares no
interpreter lock with `serve`'s watchdog; it is killed when `serve` dies (a parent-death signal).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ugt_ensemble.errors import ServerError
from ugt_ensemble.server.process import Ports, die_with_parent

#: The default bound on one request: 64 histories of 1 MiB (preprocess's own limit) and their framing.
DEFAULT_MAX_REQUEST_BYTES = 65 << 20


@dataclass(frozen=True)
class GuardPlan:
    """Where the guard listens (`host`, the public ports) and where tritonserver listens (loopback ports).
    A metrics port of 0 relays no metrics."""

    host: str
    http_port: int
    grpc_port: int
    backend_http_port: int
    backend_grpc_port: int
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    metrics_port: int = 0
    backend_metrics_port: int = 0

    def args(self) -> list[str]:
        return [
            f"--host={self.host}", f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}",
            f"--backend-http-port={self.backend_http_port}", f"--backend-grpc-port={self.backend_grpc_port}",
            f"--max-request-bytes={self.max_request_bytes}", f"--metrics-port={self.metrics_port}",
            f"--backend-metrics-port={self.backend_metrics_port}",
        ]  # fmt: skip

    def public_ports(self) -> tuple[int, ...]:
        return (self.http_port, self.grpc_port) + ((self.metrics_port,) if self.metrics_port else ())


def guard_plan(host: str, public: Ports, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> GuardPlan:
    """The plan that puts the guard on `public` (at `host`) and tritonserver on free loopback ports."""
    inner = Ports.free("127.0.0.1")
    return GuardPlan(
        host, public.http, public.grpc, inner.http, inner.grpc, max_request_bytes, public.metrics, inner.metrics
    )


def backend_ports(plan: GuardPlan) -> Ports:
    """Where tritonserver listens (on 127.0.0.1) behind `plan`'s guard."""
    return Ports(plan.backend_http_port, plan.backend_grpc_port, plan.backend_metrics_port)


class RequestGuard:
    """The guard process for `plan`: `start` waits until both ports accept connections; `stop` ends it."""

    def __init__(self, plan: GuardPlan, log_path: Path | None = None) -> None:
        self.plan, self.log_path = plan, log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> RequestGuard:
        command = [sys.executable, "-m", "ugt_ensemble.server.request_guard", *self.plan.args()]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to Popen
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout_s
        host = "127.0.0.1" if self.plan.host in ("0.0.0.0", "", "::") else self.plan.host
        while not all(_accepts(host, port) for port in self.plan.public_ports()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"the request guard did not start on {host}:{self.plan.http_port}/{self.plan.grpc_port} "
                    f"(exit code {self.process.returncode}); are the ports free?"
                )
            time.sleep(0.05)
        return self

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 3.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def run_guard(plan: GuardPlan) -> None:
    """Serve both halves of the guard until SIGTERM/SIGINT."""
    from ugt_ensemble.server.guard_grpc import start_grpc_guard
    from ugt_ensemble.server.guard_http import HttpGuard

    http = await HttpGuard(("127.0.0.1", plan.backend_http_port), plan.max_request_bytes).serve(
        plan.host, plan.http_port
    )
    metrics = None
    if plan.metrics_port:
        metrics = await HttpGuard(("127.0.0.1", plan.backend_metrics_port), 0).serve(plan.host, plan.metrics_port)
    grpc_server = await start_grpc_guard(
        plan.host, plan.grpc_port, f"127.0.0.1:{plan.backend_grpc_port}", plan.max_request_bytes
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in (http, metrics):
        if server is not None:
            server.close()
    await grpc_server.stop(grace=0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ugt_ensemble.server.request_guard", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    for name in ("http-port", "grpc-port", "backend-http-port", "backend-grpc-port"):
        parser.add_argument(f"--{name}", type=int, required=True, metavar="PORT")
    for name in ("metrics-port", "backend-metrics-port"):
        parser.add_argument(f"--{name}", type=int, default=0, metavar="PORT")
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES, metavar="N")
    args = parser.parse_args(argv)
    plan = GuardPlan(
        args.host, args.http_port, args.grpc_port, args.backend_http_port, args.backend_grpc_port,
        args.max_request_bytes, args.metrics_port, args.backend_metrics_port,
    )  # fmt: skip
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    asyncio.run(run_guard(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
