"""`python -m ugt_ensemble serve`: run a real tritonserver on a model repository until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "serve", parents=parents, help="serve a model repository with tritonserver", description=__doc__
    )
    p.add_argument("--model-repository", type=Path, default=Path("ensemble"), help="default: ensemble")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--http-port", type=int, default=8000, help="default: 8000 (0: any free port)")
    p.add_argument("--grpc-port", type=int, default=8001, help="default: 8001 (0: any free port)")
    p.add_argument("--metrics-port", type=int, default=8002, help="default: 8002 (0: any free port)")
    p.add_argument("--model-name", help="ensemble to wait for and probe (default: from the build manifest)")
    p.add_argument("--log-file", type=Path, help="tritonserver log (default: a new file under the temp dir)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for readiness (default: 180)")
    p.add_argument(
        "--model-control",
        choices=("explicit", "none"),
        default="explicit",
        help="explicit: load every model, then accept the repository API (deploy, rollback, healing); "
        "none: Triton's default, load once and refuse the API (default: explicit)",
    )
    p.add_argument(
        "--watch-interval",
        type=float,
        default=2.0,
        help="seconds between the watchdog's probes and stub checks; it reloads a step whose stub died "
        "(explicit mode only; 0: no watchdog; default: 2)",
    )
    p.set_defaults(run=run)


#: Latency quantiles per model on the metrics endpoint (read by `python -m ugt_ensemble stats`).
METRICS_ARGS = ("--metrics-config=summary_latencies=true",)


def _start_watchdog(args: argparse.Namespace, server, model_name: str, stop: threading.Event):  # noqa: ANN001, ANN202
    from ugt_ensemble.server.watchdog import Watchdog

    def fatal(reason: str) -> None:
        stop.set()

    watchdog = Watchdog(
        server.grpc_url,
        server.process.pid,
        args.model_repository.absolute(),
        model_name,
        args.watch_interval,
        on_fatal=fatal,
    )
    print(f"Watchdog: probing {model_name!r} and checking its stubs every {args.watch_interval:g} s", flush=True)
    return watchdog.start()


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.repository.manifest import ensemble_name
    from ugt_ensemble.server import Ports, TritonServer
    from ugt_ensemble.server.probe import probe_ensemble

    model_name = args.model_name or ensemble_name(args.model_repository)
    free = Ports.free(args.host if args.host != "0.0.0.0" else "127.0.0.1")
    ports = Ports(args.http_port or free.http, args.grpc_port or free.grpc, args.metrics_port or free.metrics)
    log_file = args.log_file or Path(tempfile.mkstemp(prefix="ugt-tritonserver-", suffix=".log")[1])
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    explicit = args.model_control == "explicit"
    extra = ("--model-control-mode=explicit", "--load-model=*") if explicit else ()
    server = TritonServer(
        args.model_repository, ports, args.host, [model_name], args.startup_timeout, log_file, extra + METRICS_ARGS
    )
    print(f"Starting {server.install.describe()} on {args.model_repository} ...", flush=True)
    watchdog = None
    try:
        server.start()
        probe_ensemble(server.grpc_url, model_name)
        if explicit and args.watch_interval > 0:
            watchdog = _start_watchdog(args, server, model_name, stop)
        print(
            f"Serving {model_name!r} (pid {server.process.pid}): gRPC {server.grpc_url}, "  # type: ignore[union-attr]
            f"HTTP {server.http_url}, metrics {server.metrics_url}\nLog: {log_file}. Press Ctrl-C to stop.",
            flush=True,
        )
        while server.is_running() and not stop.wait(1.0):
            pass
        if watchdog is not None and watchdog.fatal:
            print(f"watchdog: {watchdog.fatal}; stopping so that a supervisor can restart the server", flush=True)
            return 3
        if not stop.is_set():
            print(f"tritonserver exited unexpectedly:\n{server.log_tail()}")
            return 1
    finally:
        if watchdog is not None:
            watchdog.stop()
        code = server.stop()
        print(f"tritonserver stopped (exit code {code}).", flush=True)
    return 0
