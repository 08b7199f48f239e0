"""The business-rules benchmark (issue 16's BENCHMARKS.md figures): `python -m ugt_ensemble_dev.bench.rules CMD`.

- `build --items N --output DIR`: DIR/catalog.csv (with an `allow` column: a seeded `--allow-share` of the items),
  DIR/next.csv (5 % removed, 2 % added) and DIR/repo, the reference UGT built on it; the seconds of each stage.
- `latency --repository R`: no rule, exclude-history, 1,000 exclusions and the allow-list at each concurrency.
- `switch --repository R --catalog DIR/next.csv`: a data-only deploy under concurrency-8 traffic, by stage.
  The repository then serves the new version: run it after `latency` and `memory`.
- `memory --repository R [--server-python PY]`: Rss, Pss and private memory of tritonserver and each stub.

Each prints a Markdown report (and writes it to `--report FILE` when given). These are measurements: run them on
a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ugt_ensemble_dev.bench.rules_documents import VARIANTS, parse_variants


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--concurrency takes integers like 1,8; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--concurrency takes integers >= 1 like 1,8; got {text!r}")
    return values


def _variants(text: str) -> tuple[str, ...]:
    try:
        return parse_variants(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m ugt_ensemble_dev.bench.rules", description=__doc__.splitlines()[0])
    p.add_argument("--report", type=Path, help="also write the Markdown report to this file")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="catalog.csv, next.csv and the repository, timed")
    b.add_argument("--items", type=int, required=True)
    b.add_argument("--output", type=Path, required=True, help="folder for catalog.csv, next.csv and repo/")
    b.add_argument("--allow-share", type=float, default=0.01, help="share of items in set `allow` (default 0.01)")
    b.add_argument("--remove-share", type=float, default=0.05, help="share of items next.csv drops (default 0.05)")
    b.add_argument("--add-share", type=float, default=0.02, help="share of new items in next.csv (default 0.02)")
    b.add_argument("--instances", type=int, default=1, help="instances of every step (default 1)")
    b.add_argument("--seed", type=int, default=0)
    lat = sub.add_parser("latency", help="latency and throughput of each rule variant")
    lat.add_argument("--repository", type=Path, required=True)
    lat.add_argument("--concurrency", type=_concurrency, default=(1, 8))
    lat.add_argument("--seconds", type=float, default=20.0, help="length of each timed run (default 20)")
    lat.add_argument("--history-length", type=int, default=100)
    lat.add_argument("--histories", type=int, default=64, help="distinct seeded histories (default 64)")
    lat.add_argument("--variants", type=_variants, default=VARIANTS, help=f"default: {','.join(VARIANTS)}")
    lat.add_argument("--exclusions", type=int, default=1000, help="ids each `exclusions` request sends")
    lat.add_argument("--exclusion-rounds", type=int, default=4,
                     help="the exclusions start with the model's top K x this many items (default 4)")  # fmt: skip
    lat.add_argument("--set", dest="set_name", default="allow", help="the allow-list's set name (default allow)")
    lat.add_argument("--warmup", type=int, default=50, help="warm-up requests before each run (default 50)")
    lat.add_argument("--rounds", type=int, default=1, help="interleaved rounds; each row is the median (default 1)")
    lat.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("switch", help="a data-only catalog deploy under traffic, by stage")
    s.add_argument("--repository", type=Path, required=True)
    s.add_argument("--catalog", type=Path, required=True, help="the new catalog (e.g. next.csv of `build`)")
    s.add_argument("--concurrency", type=int, default=8)
    s.add_argument("--before", type=float, default=2.0, help="seconds of traffic before the deploy (default 2)")
    s.add_argument("--after", type=float, default=3.0, help="seconds of traffic after it (default 3)")
    s.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("memory", help="resident memory of tritonserver and each stub")
    m.add_argument("--repository", type=Path, required=True)
    m.add_argument("--server-python", help="the Python whose ugt_ensemble serves it (default: this one)")
    m.add_argument("--requests", type=int, default=32, help="requests sent before reading (default 32)")
    m.add_argument("--instances-note", default="", help="a note printed with the table (e.g. instance counts)")
    m.add_argument("--log", type=Path, help="the server's log file (default /tmp/ugt-rules-memory-<pid>.log)")
    m.add_argument("--seed", type=int, default=0)
    return p


def run(args: argparse.Namespace) -> str:
    """Run the chosen subcommand; its Markdown report."""
    if args.command == "build":
        from ugt_ensemble_dev.bench.rules_catalogs import run_build

        return run_build(
            args.items, args.output, args.allow_share, args.seed, args.remove_share, args.add_share, args.instances
        )
    if args.command == "latency":
        from ugt_ensemble_dev.bench.rules_latency import LatencyOptions, run_latency

        return run_latency(LatencyOptions(
            args.repository, args.variants, args.concurrency, args.seconds, args.history_length, args.histories,
            args.exclusions, args.exclusion_rounds, args.set_name, args.warmup, args.rounds, args.seed,
        ))  # fmt: skip
    if args.command == "switch":
        from ugt_ensemble_dev.bench.rules_switch import run_switch

        return run_switch(args.repository, args.catalog, args.concurrency, args.before, args.after, seed=args.seed)
    from ugt_ensemble_dev.bench.rules_memory import run_memory

    return run_memory(args.repository, args.server_python, args.requests, args.instances_note, args.seed, args.log)


def main(argv: Sequence[str] | None = None) -> int:
    from ugt_ensemble.errors import UgtEnsembleError

    args = parser().parse_args(argv)
    try:
        report = run(args)
    except UgtEnsembleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
