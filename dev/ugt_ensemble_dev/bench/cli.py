"""`python -m ugt_ensemble bench`: load-test the served ensemble (and its peers) over gRPC, or tune its model step.

The development package declares the command; the product's `ugt_ensemble.cli.dev_commands` loads this
module when the parser is built. Every flag that sets a config field takes its default from that field
(`BenchmarkConfig`, `TuneConfig`, `SuiteConfig`; shown by `cli.flags`); the benchmark itself (tritonclient,
the server) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ugt_ensemble.cli.common import int_list
from ugt_ensemble.cli.flags import Flag, field_default, given, shown
from ugt_ensemble.config import BENCH_TARGETS, BenchmarkConfig
from ugt_ensemble.errors import ConfigError
from ugt_ensemble_dev.bench.profiles import COMPARE_CONCURRENCY, COMPARE_HISTORY_LENGTHS, SuiteConfig, TuneConfig

if TYPE_CHECKING:
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble.repository.step_settings import StepSettings
    from ugt_ensemble.server import TritonServer
    from ugt_ensemble_dev.bench.runner import BenchReport

#: The repository benchmarked when --model-repository is left out (where `build` writes by default).
DEFAULT_REPOSITORY = Path("ensemble")
#: `BenchmarkConfig` fields that `--tune` and `--suite` measure with (their own defaults apply otherwise).
TUNE_FIELDS = ("concurrency", "duration_s", "rounds", "num_warmup_requests", "history_lengths", "histories", "seed")
SUITE_FIELDS = ("duration_s", "perf_measurement_ms", "rounds")


def _default(owner: type, name: str) -> str:
    """The default of field `name` of the dataclass `owner`, as the help shows it."""
    return shown(field_default(owner, name))


def _modes(name: str, **modes: object) -> str:
    """Help text "<BenchmarkConfig default>; --mode: <value>; ..." for a flag whose default a mode changes."""
    return "; ".join([_default(BenchmarkConfig, name)] + [f"--{mode}: {shown(v)}" for mode, v in modes.items()])


def target_list(text: str) -> tuple[str, ...]:
    """argparse type: "ensemble,naive" -> ("ensemble", "naive"), each one of BENCH_TARGETS."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in BENCH_TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown target {unknown or text!r}; choose from {', '.join(BENCH_TARGETS)}")
    return names


def _suite(name: str) -> str:
    return _default(SuiteConfig, name)


def _tune(name: str) -> str:
    return _default(TuneConfig, name)


B = BenchmarkConfig
LOAD = [
    Flag("--model-repository", B, "model_repository", "the built repository (catalog, names); served here "
         "unless --url is given", Path, metavar="DIR", default_text=str(DEFAULT_REPOSITORY)),
    Flag("--url", B, "triton_url", "gRPC address of a server already serving --model-repository", str,
         metavar="HOST:PORT", default_text="start a tritonserver here on free loopback ports"),
    Flag("--target", B, "targets", f"what to load: {', '.join(BENCH_TARGETS)}", target_list, metavar="NAME[,NAME]"),
    Flag("--concurrency", B, "concurrency", "requests in flight, one run per value, e.g. 1,2,4,8", int_list,
         metavar="N[,N]",
         default_text=_modes("concurrency", compare=COMPARE_CONCURRENCY,
                             tune=f"the last value, else {_tune('concurrency')}")),
    Flag("--requests", B, "num_requests", "requests per run (unless --duration)", int, metavar="N"),
    Flag("--duration", B, "duration_s", "seconds per run instead of a request count", float,
         metavar="SECONDS", default_text=_modes("duration_s", suite=_suite("duration_s"), tune=_tune("duration_s"))),
    Flag("--warmup", B, "num_warmup_requests", "warm-up requests before each run", int, metavar="N"),
    Flag("--history-lengths", B, "history_lengths", '"100", "32-1024" (log-uniform) or "32,128,1024"', str,
         metavar="SPEC", default_text=_modes("history_lengths", compare=COMPARE_HISTORY_LENGTHS)),
    Flag("--histories", B, "histories", "distinct seeded histories", int, metavar="N"),
    Flag("--malformed-share", B, "malformed_share", "share of malformed requests (their failures are counted)", float,
         metavar="SHARE"),
    Flag("--seed", B, "seed", "seed of the histories", int, metavar="N"),
    Flag("--rounds", B, "rounds", "interleaved repetitions, median run kept", int,
         metavar="N", default_text=_modes("rounds", suite=_suite("rounds"), tune=_tune("rounds"))),
]  # fmt: skip
PERF = [
    Flag("--perf-analyzer", B, "perf_analyzer", "also run NVIDIA perf_analyzer (per-step breakdown)",
         action="store_true"),
    Flag("--perf-analyzer-only", B, "load", "run perf_analyzer instead of the Python client", action="store_false"),
    Flag("--measurement-ms", B, "perf_measurement_ms", "perf_analyzer window in ms", int,
         metavar="MS", default_text=_modes("perf_measurement_ms", suite=_suite("perf_measurement_ms"))),
]  # fmt: skip
TUNE = [
    Flag("--tune-instances", TuneConfig, "instance_count", "model-step instance_count values to try", int_list,
         metavar="N[,N]", default_text="1,2 and cores/2"),
    Flag("--tune-threads", TuneConfig, "intra_op_threads", "ONNX Runtime intra_op_threads values to try", int_list,
         metavar="N[,N]", default_text="1,2 and all cores"),
    Flag("--tune-delays", TuneConfig, "max_queue_delay_us", "max_queue_delay_us values to try", int_list,
         metavar="US[,US]"),
    Flag("--tune-margin", TuneConfig, "margin", "how much faster (share) a new setting must be", float,
         metavar="SHARE"),
    Flag("--tune-p99-slack", TuneConfig, "p99_slack", "how much worse (share) its p99 may be", float,
         metavar="SHARE"),
]  # fmt: skip
FLAGS = LOAD + PERF + TUNE


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "bench", parents=parents, help="benchmark a served repository over gRPC", description=__doc__
    )
    amount = p.add_mutually_exclusive_group()
    for flag in LOAD:
        flag.add_to(amount if flag.field in ("num_requests", "duration_s") else p)
    p.add_argument(
        "--model", metavar="NAME", help="load the model of this name (its role picks the target; e.g. the ensemble)"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="all targets side by side (the naive peer if the repository has it)",
    )
    for flag in PERF:
        flag.add_to(p)
    p.add_argument(
        "--output-dir", type=Path, default=Path("bench-results"), metavar="DIR", help="default: bench-results"
    )
    p.add_argument("--suite", type=Path, metavar="REPORT.md", help="run the suite behind BENCHMARKS.md into REPORT.md")
    tune = p.add_argument_group(
        "tuning (--tune)",
        "--tune measures the ensemble with --concurrency (its last value), --duration, --rounds, "
        "--warmup, --history-lengths, --histories and --seed",
    )
    tune.add_argument(
        "--tune",
        action="store_true",
        help="try model-step settings on a server started here and pick the fastest for the ensemble",
    )
    for flag in TUNE:
        flag.add_to(tune)
    tune.add_argument("--write-config", action="store_true", help="write the chosen settings into the model step")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace, info: RepositoryInfo, url: str = B.triton_url) -> BenchmarkConfig:
    """Map the flags into one `BenchmarkConfig` against `url` (the only place that does)."""
    values = given(args, FLAGS, BenchmarkConfig)
    if args.compare:
        values["targets"] = tuple(t for t in BENCH_TARGETS if t != "naive" or info.naive_peer)
        values.setdefault("history_lengths", COMPARE_HISTORY_LENGTHS)
        values.setdefault("concurrency", COMPARE_CONCURRENCY)
    elif args.model:
        values["targets"] = (target_of_model(info, args.model),)
    if values.get("load") is False:
        values["perf_analyzer"] = True
    return BenchmarkConfig(**{**values, "triton_url": url, "model_repository": info.path})


def tune_config_from_args(args: argparse.Namespace) -> TuneConfig:
    """The `TuneConfig` of `--tune` (the last --concurrency value is the one measured)."""
    values = {k: v for k, v in given(args, FLAGS, BenchmarkConfig).items() if k in TUNE_FIELDS}
    if "concurrency" in values:
        values["concurrency"] = values["concurrency"][-1]
    return TuneConfig(**values, **given(args, FLAGS, TuneConfig))


def suite_config_from_args(args: argparse.Namespace) -> SuiteConfig:
    """The `SuiteConfig` of `--suite`."""
    return SuiteConfig(**{k: v for k, v in given(args, FLAGS, BenchmarkConfig).items() if k in SUITE_FIELDS})


def target_of_model(info: RepositoryInfo, model: str) -> str:
    """The benchmark target that loads `model` of the repository."""
    roles = {info.ensemble: "ensemble", info.model_step: "model_step", info.naive_peer: "naive"}
    if model not in roles:
        peer = f", naive peer {info.naive_peer!r}" if info.naive_peer else ""
        raise ConfigError(
            f"{info.path} has no model {model!r} to benchmark (ensemble {info.ensemble!r}, "
            f"model step {info.model_step!r}{peer})"
        )
    return roles[model]


@contextlib.contextmanager
def served(args: argparse.Namespace, info: RepositoryInfo) -> Iterator[tuple[str, int | None]]:
    """The gRPC address to load and the server's pid when it runs here: --url, or a tritonserver
    started for the run (then the report includes its CPU per request)."""
    url = given(args, FLAGS, BenchmarkConfig).get("triton_url")
    if url:
        yield url, None
        return
    with started(info) as server:
        yield server.grpc_url, server.process.pid  # type: ignore[union-attr]


@contextlib.contextmanager
def started(info: RepositoryInfo) -> Iterator[TritonServer]:
    """A tritonserver on `info`'s repository until the block ends, served as `serve` serves it (`ServingContext`:
    explicit model control, latency summaries, a probe through the ensemble, cleanup) on loopback, free ports and
    its own operator key, but with no watchdog, whose probes would fall into the measurements."""
    from ugt_ensemble.server.context import ServingContext

    ready = [info.ensemble, info.model_step] + ([info.naive_peer] if info.naive_peer else [])
    print(f"Starting tritonserver on {info.path} (loopback, free ports) ...", flush=True)
    with ServingContext.create(info.path, info.ensemble, ready_models=ready, watch_interval_s=0) as context:
        yield context.server


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.repository.inspect import RepositoryInfo

    repository = given(args, FLAGS, BenchmarkConfig).get("model_repository") or DEFAULT_REPOSITORY
    info = RepositoryInfo.read(repository)
    if args.tune:
        return run_tuning(args, info)
    if args.suite:
        return run_suite(args, info)
    from ugt_ensemble_dev.bench.runner import run_benchmark

    config = config_from_args(args, info)  # checked before a server starts
    with served(args, info) as (url, pid):
        config = dataclasses.replace(config, triton_url=url)
        report = run_benchmark(config, info, args.output_dir, show_progress=not args.quiet, server_pid=pid)
    print_report(report)
    return 0


def print_report(report: BenchReport) -> None:
    """The tables and target checks of `report`, then the files written."""
    from ugt_ensemble_dev.bench.report import markdown_table

    for title, results, checks in (
        ("Python client", report.results, report.checks),
        ("perf_analyzer", report.perf_results, report.perf_checks),
    ):
        if results:
            print(f"\n{title}:\n{markdown_table(results)}")
        for check in checks:
            print(f"{'✓' if check.ok else 'x'} {check.name}: {check.measured} (target: {check.requirement})")
    print("Wrote " + ", ".join(str(p) for p in report.files.values()))


def run_suite(args: argparse.Namespace, info: RepositoryInfo) -> int:
    """`--suite REPORT.md`: both parts of the suite against one server, written to REPORT.md."""
    from ugt_ensemble_dev.bench import suite

    config = suite_config_from_args(args)
    command = "python -m ugt_ensemble " + shlex.join(sys.argv[1:])
    with served(args, info) as (url, pid):
        suite.run_suite(args.suite, url, info, args.output_dir, pid, config, not args.quiet, command)
    print(f"Wrote {args.suite} (raw results under {args.output_dir})")
    return 0


def run_tuning(args: argparse.Namespace, info: RepositoryInfo) -> int:
    """`--tune`: measure the candidates on a server started here, report, and optionally write the winner."""
    from ugt_ensemble.repository.step_settings import read_step_config, settings_of
    from ugt_ensemble_dev.bench.tune import run_tune, tune_grid, tune_markdown

    if given(args, FLAGS, BenchmarkConfig).get("triton_url"):
        raise ConfigError("--tune starts its own tritonserver (it reloads the model step); leave out --url")
    config = tune_config_from_args(args)
    step_config = read_step_config(info.path, info.model_step)
    grid = tune_grid(settings_of(step_config), config, os.cpu_count() or 1)
    print(f"Tuning {info.model_step!r}: {len(grid)} candidates x {config.rounds} rounds of {config.duration_s:g} s")
    with started(info) as server:  # explicit model control: the candidates are loaded through the repository API
        result = run_tune(
            server.grpc_url, info, step_config, grid, config, not args.quiet, operator_key=server.operator_key
        )
    text = tune_markdown(result, config)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "tune.md").write_text(text, encoding="utf-8")
    print(f"\n{text}\nWrote {args.output_dir / 'tune.md'}")
    if args.write_config:
        _write_choice(info, result.chosen)
    return 0


def _write_choice(info: RepositoryInfo, chosen: StepSettings) -> None:
    """Write the chosen `StepSettings` into the repository's model step (and its manifest)."""
    from ugt_ensemble.repository.step_settings import write_step_settings

    note = (
        f"Tuned by `python -m ugt_ensemble bench --tune` on {time.strftime('%Y-%m-%d')}: "
        f"{chosen.label()}. A rebuild resets it unless built with {chosen.build_flags()}."
    )
    print(f"Wrote {write_step_settings(info.path, info.model_step, chosen, note)}")
