"""`python -m ugt_ensemble bench`: load-test the served ensemble (and its peers) over gRPC, or tune its model step."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Iterator

from ugt_ensemble.bench.perf_runs import as_run_stats
from ugt_ensemble.bench.report import markdown_table
from ugt_ensemble.bench.runner import BenchmarkConfig, run_benchmark
from ugt_ensemble.bench.suite import run_suite
from ugt_ensemble.bench.targets import TARGETS
from ugt_ensemble.bench.tune import TuneConfig, candidate_grid, default_axes, run_tune, tune_markdown
from ugt_ensemble.bench.workload import RepositoryInfo
from ugt_ensemble.cli.common import int_list
from ugt_ensemble.errors import ConfigError
from ugt_ensemble.repository.step_settings import read_step_config, settings_of, write_step_settings
from ugt_ensemble.server import TritonServer


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "bench", parents=parents, help="benchmark a served repository over gRPC", description=__doc__
    )
    p.add_argument(
        "--model-repository",
        type=Path,
        default=Path("ensemble"),
        help="the built repository (catalog, names); served here unless --url is given (default: ensemble)",
    )
    p.add_argument("--url", help="gRPC address of a server already serving --model-repository")
    p.add_argument(
        "--target", action="append", choices=list(TARGETS), help="what to load (repeatable; default: ensemble)"
    )
    p.add_argument("--model", help="load the model of this name (its role picks the target; e.g. the ensemble)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="all targets side by side (the naive peer if the repository has it); lengths default to 100",
    )
    p.add_argument(
        "--concurrency", type=int_list, default=(1, 8), help="requests in flight, e.g. 1,2,4,8 (default: 1,8)"
    )
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--requests", type=int, help="requests per run (default: 500)")
    amount.add_argument("--duration", type=float, help="seconds per run instead of a request count")
    p.add_argument("--warmup", type=int, default=50, help="warm-up requests before each run (default: 50)")
    p.add_argument("--history-lengths", help='"100", "32-1024" (log-uniform; the default) or "32,128,1024"')
    p.add_argument("--histories", type=int, default=256, help="distinct seeded histories (default: 256)")
    p.add_argument("--malformed-share", type=float, default=0.0, help="share of malformed requests (default: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, help="interleaved repetitions, median run kept (default: 1; --suite: 3)")
    p.add_argument("--perf-analyzer", action="store_true", help="also run NVIDIA perf_analyzer (per-step breakdown)")
    p.add_argument("--perf-analyzer-only", action="store_true", help="run perf_analyzer instead of the Python client")
    p.add_argument("--measurement-ms", type=int, help="perf_analyzer window in ms (default: 4000; --suite: 3000)")
    p.add_argument("--output-dir", type=Path, default=Path("bench-results"), help="default: bench-results")
    p.add_argument(
        "--suite",
        type=Path,
        metavar="REPORT.md",
        help="run the fixed suite behind BENCHMARKS.md and write it to REPORT.md",
    )
    tune = p.add_argument_group("tuning (--tune)")
    tune.add_argument(
        "--tune",
        action="store_true",
        help="try model-step settings on a server started here and pick the fastest for the ensemble "
        "(at the last --concurrency value; --duration default 4, --rounds default 3)",
    )
    tune.add_argument("--tune-instances", type=int_list, help="instance counts to try (default: 1,2[,cores/2])")
    tune.add_argument("--tune-threads", type=int_list, help="ONNX Runtime threads to try (default: 1,2,cores)")
    tune.add_argument("--tune-delays", type=int_list, help="queue delays in us to try (default: 0,200)")
    tune.add_argument(
        "--tune-margin", type=float, default=0.05, help="how much faster a new setting must be (default: 0.05)"
    )
    tune.add_argument(
        "--write-config", action="store_true", help="write the chosen settings into the repository's model step"
    )
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace, info: RepositoryInfo) -> BenchmarkConfig:
    if args.compare:
        targets = [t for t in TARGETS if t != "naive" or info.naive_peer]
    elif args.model:
        targets = [target_of_model(info, args.model)]
    else:
        targets = args.target or ["ensemble"]
    lengths = args.history_lengths or ("100" if args.compare else "32-1024")
    requests = None if args.duration else (args.requests or 500)
    return BenchmarkConfig(
        targets=tuple(targets),
        concurrency=tuple(args.concurrency),
        requests=requests,
        duration_s=args.duration,
        warmup=args.warmup,
        history_lengths=lengths,
        histories=args.histories,
        malformed_share=args.malformed_share,
        seed=args.seed,
        rounds=args.rounds or 1,
        load=not args.perf_analyzer_only,
        perf_analyzer=args.perf_analyzer or args.perf_analyzer_only,
        perf_measurement_ms=args.measurement_ms or 4000,
    )


def target_of_model(info: RepositoryInfo, model: str) -> str:
    """The benchmark target that loads `model` of the repository."""
    roles = {info.ensemble: "ensemble", info.model_step: "model_step", info.naive_peer: "naive"}
    if model not in roles:
        raise ConfigError(
            f"{info.path} has no model {model!r} to benchmark (ensemble {info.ensemble!r}, "
            f"model step {info.model_step!r}" + (f", naive peer {info.naive_peer!r})" if info.naive_peer else ")")
        )
    return roles[model]


@contextlib.contextmanager
def served(
    args: argparse.Namespace, info: RepositoryInfo, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[str, int | None]]:
    """The gRPC address to load and the server's pid when it runs here: --url, or a tritonserver
    started for the run (then the report includes its CPU per request)."""
    if args.url:
        yield args.url, None
        return
    ready = [info.ensemble, info.model_step] + ([info.naive_peer] if info.naive_peer else [])
    print(f"Starting tritonserver on {info.path} (loopback, free ports) ...", flush=True)
    with TritonServer(info.path, ready_models=ready, extra_args=extra_args) as server:
        yield server.grpc_url, server.process.pid  # type: ignore[union-attr]


def run(args: argparse.Namespace) -> int:
    info = RepositoryInfo.read(args.model_repository)
    if args.tune:
        return run_tuning(args, info)
    if args.suite:
        with served(args, info) as (url, pid):
            run_suite(
                args.suite,
                url,
                info,
                args.output_dir,
                pid,
                args.duration or 6.0,
                args.measurement_ms or 3000,
                args.rounds or 3,
                show_progress=not args.quiet,
                command="python -m ugt_ensemble " + shlex.join(sys.argv[1:]),
            )
        print(f"Wrote {args.suite} (raw results under {args.output_dir})")
        return 0
    config = config_from_args(args, info)
    with served(args, info) as (url, pid):
        result = run_benchmark(config, url, info, args.output_dir, show_progress=not args.quiet, server_pid=pid)
    for title, stats, checks in (
        ("Python client", result.stats, result.checks),
        ("perf_analyzer", as_run_stats(result.perf), result.perf_checks),
    ):
        if stats:
            print(f"\n{title}:\n{markdown_table(stats)}")
        for check in checks:
            print(f"{'✓' if check.ok else 'x'} {check.name}: {check.measured} (target: {check.requirement})")
    print("Wrote " + ", ".join(str(p) for p in result.files.values()))
    return 0


def run_tuning(args: argparse.Namespace, info: RepositoryInfo) -> int:
    """`--tune`: measure the candidates on a server started here, report, and optionally write the winner."""
    if args.url:
        raise ConfigError("--tune starts its own tritonserver (it reloads the model step); leave out --url")
    config = TuneConfig(
        concurrency=args.concurrency[-1],
        duration_s=args.duration or 4.0,
        warmup=args.warmup,
        rounds=args.rounds or 3,
        history_lengths=args.history_lengths or "32-1024",
        histories=args.histories,
        seed=args.seed,
        margin=args.tune_margin,
    )
    step_config = read_step_config(info.path, info.model_step)
    current = settings_of(step_config)
    instances, threads, delays = default_axes(os.cpu_count() or 1)
    grid = candidate_grid(
        current, args.tune_instances or instances, args.tune_threads or threads, args.tune_delays or delays
    )
    print(f"Tuning {info.model_step!r}: {len(grid)} candidates x {config.rounds} rounds of {config.duration_s:g} s")
    explicit = ("--model-control-mode=explicit", "--load-model=*")
    with served(args, info, explicit) as (url, _):
        result = run_tune(url, info, step_config, grid, config, show_progress=not args.quiet)
    report = tune_markdown(result, config)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "tune.md").write_text(report, encoding="utf-8")
    print(f"\n{report}\nWrote {args.output_dir / 'tune.md'}")
    if args.write_config:
        note = (
            f"Tuned by `python -m ugt_ensemble bench --tune` on {time.strftime('%Y-%m-%d')}: "
            f"{result.chosen.label()}. A rebuild resets it unless built with {result.chosen.build_flags()}."
        )
        print(f"Wrote {write_step_settings(info.path, info.model_step, result.chosen, note)}")
    return 0
