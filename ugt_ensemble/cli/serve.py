"""`python -m ugt_ensemble serve`: run a real tritonserver on a model repository until Ctrl-C/SIGTERM.

The server-changing APIs demand the operator key (printed: where it lives, never the key). tritonserver is
supervised: when it dies it is restarted on the same ports (at most --max-restarts times within
--restart-window, waiting 1 s doubling to 30 s), after its orphan stubs and shared memory are removed; also
when the watchdog's heals keep failing, a load or reload that misses --heal-timeout included. SIGTERM stops
it within 10 s in every state. At start it removes what dead serve processes left (their tritonservers,
stubs, shared-memory regions and temporary folders).
"""

from __future__ import annotations

import argparse
import signal
import tempfile
from pathlib import Path

from ugt_ensemble.server.request_guard import DEFAULT_MAX_REQUEST_BYTES


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
        help="seconds between the watchdog's probes and stub checks; it reloads a step whose stub died and loads "
        "again a model that was unloaded (explicit mode only; 0: no watchdog; default: 2)",
    )
    p.add_argument(
        "--heal-timeout",
        type=float,
        default=60.0,
        help="seconds a load or reload by the watchdog may take; one that misses it is a failed heal, and "
        "failed heals in 3 rounds in a row restart tritonserver (default: 60)",
    )
    p.add_argument(
        "--operator-key-file",
        type=Path,
        help="file with the key for the server-changing APIs; generated (0600) if absent "
        "(default: $UGT_OPERATOR_KEY_FILE, else operator.key in $UGT_STATE_DIR or ~/.local/state/ugt-ensemble; "
        "$UGT_OPERATOR_KEY, the key itself, wins over any file)",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="restarts of a tritonserver that died allowed within --restart-window; one more and serve exits 3 "
        "(default: 5)",
    )
    p.add_argument(
        "--restart-window", type=float, default=600.0, help="seconds over which restarts are counted (default: 600)"
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help="the request guard's bound on one HTTP body or gRPC message, checked before anything is inflated; "
        f"compressed HTTP bodies are refused (default: {DEFAULT_MAX_REQUEST_BYTES})",
    )
    p.add_argument(
        "--no-request-guard",
        dest="request_guard",
        action="store_false",
        help="let clients reach tritonserver's ports directly (only behind a gateway that bounds request bodies "
        "after decompression, or refuses compressed ones: tritonserver inflates them whole)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.repository.manifest import ensemble_name
    from ugt_ensemble.server import Ports
    from ugt_ensemble.server.context import ServingContext
    from ugt_ensemble.server.operator_key import HEADER, load_operator_key
    from ugt_ensemble.server.request_guard import RequestGuard, backend_ports, guard_plan
    from ugt_ensemble.server.supervisor import RestartPolicy, Supervisor
    from ugt_ensemble.server.sweep import sweep_dead_serves

    model_name = args.model_name or ensemble_name(args.model_repository)
    swept = sweep_dead_serves()
    if swept:
        print(f"Removed what dead serve processes left: {swept.describe()}", flush=True)
    key = load_operator_key(args.operator_key_file, create=True)
    free = Ports.free(args.host if args.host != "0.0.0.0" else "127.0.0.1")
    ports = Ports(args.http_port or free.http, args.grpc_port or free.grpc, args.metrics_port or free.metrics)
    log_file = args.log_file or Path(tempfile.mkstemp(prefix="ugt-tritonserver-", suffix=".log")[1])
    guard, host = None, args.host
    if args.request_guard:
        plan = guard_plan(args.host, ports, args.max_request_bytes)
        guard = RequestGuard(plan, log_file.with_name(log_file.name + ".guard"))
        ports, host = backend_ports(plan), "127.0.0.1"
    context = ServingContext.create(
        args.model_repository,
        model_name,
        ports=ports,
        host=host,
        startup_timeout_s=args.startup_timeout,
        log_path=log_file,
        explicit=args.model_control == "explicit",
        watch_interval_s=args.watch_interval,
        operator_key=key,
        heal_timeout_s=args.heal_timeout,
    )
    supervisor = Supervisor(
        context, RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window), public=guard
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.request_stop)
    print(f"Starting {context.server.install.describe()} on {args.model_repository} ...", flush=True)
    print(
        f"Operator key: {key.source} (send it as the header {HEADER!r} to load/unload models, logging, trace)",
        flush=True,
    )
    if guard is None:
        return supervisor.run()
    try:
        guard.start()
        return supervisor.run()
    finally:
        guard.stop()
