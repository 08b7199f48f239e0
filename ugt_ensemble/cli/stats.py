"""`python -m ugt_ensemble stats`: per-model requests, failures and latencies from Triton's /metrics."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser("stats", parents=parents, help="per-model counts and latencies", description=__doc__)
    p.add_argument(
        "--metrics-url",
        default="http://127.0.0.1:8002/metrics",
        help="Triton's metrics endpoint (default: %(default)s)",
    )
    p.add_argument("--models", help="comma-separated models, e.g. two A/B variants (default: all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.serving.metrics import model_stats, scrape

    models = [m for m in (args.models or "").split(",") if m] or None
    rows = model_stats(scrape(args.metrics_url), models)
    show = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"{'model':<24} {'success':>9} {'failure':>8} {'avg ms':>8} {'queue ms':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r.model:<24} {r.success:>9} {r.failure:>8} {show(r.avg_ms):>8} {show(r.avg_queue_ms):>9} "
              f"{show(r.p50_ms):>8} {show(r.p99_ms):>8}")  # fmt: skip
    return 0
