"""`python -m ugt_ensemble stats`: per-model requests, failures and latencies from Triton's /metrics.

Failures count once per refused request (Triton 2.51 counts an ensemble's twice and a Python step's as
successes), health probes are counted apart from user requests, and the steps' own metrics follow the table:
the served catalog, stub starts, rule use, short answers. `--watch N` prints the rates every N seconds.
"""

from __future__ import annotations

import argparse
import time


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser("stats", parents=parents, help="per-model counts and latencies", description=__doc__)
    p.add_argument(
        "--metrics-url",
        default="http://127.0.0.1:8002/metrics",
        help="Triton's metrics endpoint (default: %(default)s)",
    )
    p.add_argument("--models", help="comma-separated models, e.g. two A/B variants (default: all)")
    p.add_argument(
        "--ensembles",
        default="ugt_recommend",
        help="comma-separated ensemble models, the probed one first (default: %(default)s)",
    )
    p.add_argument("--watch", type=float, metavar="SECONDS", help="print the rates every SECONDS until Ctrl-C")
    p.add_argument("--rounds", type=int, metavar="N", help="with --watch: stop after N rounds")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.serving.metric_report import step_lines
    from ugt_ensemble.serving.metrics import model_stats, parse_metrics, scrape

    models = [m for m in (args.models or "").split(",") if m] or None
    ensembles = [m for m in args.ensembles.split(",") if m]
    if args.watch:
        return _watch(args.metrics_url, args.watch, args.rounds, ensembles, models)
    text = scrape(args.metrics_url)
    rows = model_stats(text, models, ensembles)
    show = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"{'model':<24} {'success':>9} {'failure':>8} {'probes':>7} {'avg ms':>8} {'queue ms':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8}")  # fmt: skip
    for r in rows:
        print(f"{r.model:<24} {r.success:>9} {r.failure:>8} {r.probes:>7} {show(r.avg_ms):>8} "
              f"{show(r.avg_queue_ms):>9} {show(r.p50_ms):>8} {show(r.p99_ms):>8}")  # fmt: skip
    for line in step_lines(parse_metrics(text)):
        print(line)
    return 0


def _watch(url: str, seconds: float, rounds: int | None, ensembles: list[str], models: list[str] | None) -> int:
    from ugt_ensemble.serving.metric_report import rates
    from ugt_ensemble.serving.metrics import parse_metrics, scrape

    before, start, done = parse_metrics(scrape(url)), time.monotonic(), 0
    print(f"rates every {seconds:g} s (Ctrl-C stops): requests/s, failures/s, probes/s, average ms in the interval")
    try:
        while rounds is None or done < rounds:
            time.sleep(seconds)
            after, now = parse_metrics(scrape(url)), time.monotonic()
            print(time.strftime("%H:%M:%S"))
            for r in rates(before, after, now - start, ensembles):
                if models is None or r.model in models:
                    avg = "-" if r.avg_ms is None else f"{r.avg_ms:.2f}"
                    print(f"  {r.model:<24} {r.requests_s:>8.2f} req/s {r.failures_s:>7.2f} fail/s "
                          f"{r.probes_s:>6.2f} probe/s {avg:>8} ms")  # fmt: skip
            before, start, done = after, now, done + 1
    except KeyboardInterrupt:
        pass
    return 0
