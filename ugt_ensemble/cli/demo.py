"""`python -m ugt_ensemble demo`: build (if needed), serve, query sample histories, print, stop."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from ugt_ensemble.cli.common import print_results


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "demo", parents=parents, help="build, serve, query sample histories, stop", description=__doc__
    )
    p.add_argument("--output-dir", type=Path, default=Path("ensemble"), help="model repository (default: ensemble)")
    p.add_argument("--rebuild", action="store_true", help="build even if the repository already exists")
    p.add_argument("--top", type=int, default=50, help="items to print per history (default: 50)")
    p.set_defaults(run=run)


def sample_histories(item_ids: np.ndarray, seed: int = 7) -> dict[str, str]:
    """A few labelled HISTORY documents over the catalog, and one malformed request."""
    from ugt_ensemble.histories import history_json, random_history

    rng = np.random.default_rng(seed)
    return {
        "3 bare item ids": history_json([int(i) for i in rng.choice(item_ids, 3)]),
        "12 typed events": history_json(random_history(item_ids, 12, rng, typed_share=1.0)),
        "300 mixed events": history_json(random_history(item_ids, 300, rng)),
        "cold start (empty history)": "[]",
        "malformed (unknown event type)": '[{"item_id": 1, "type": "like"}]',
    }


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.client.grpc_client import RecommendClient
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble.repository.manifest import MANIFEST
    from ugt_ensemble.server import TritonServer
    from ugt_ensemble.server.probe import probe_ensemble

    if args.rebuild or not (args.output_dir / MANIFEST).is_file():
        _build(args)
    info = RepositoryInfo.read(args.output_dir)
    samples = sample_histories(info.index.item_ids)
    print(f"Starting tritonserver on {args.output_dir} (loopback, free ports) ...", flush=True)
    with TritonServer(args.output_dir, ready_models=[info.ensemble]) as server:
        probe_ensemble(server.grpc_url, info.ensemble)
        with RecommendClient(server.grpc_url, info.ensemble) as client:
            results, latencies = [], []
            for history in samples.values():
                start = time.perf_counter()
                results.append(client.recommend_results([history])[0])  # a malformed sample fails alone
                latencies.append((time.perf_counter() - start) * 1e3)
            print_results(results, list(samples), args.top, latencies)
            _check_items(dict(zip(samples, results)), set(info.index.item_ids.tolist()), info.num_recommendations)
            for label in ("3 bare item ids", "300 mixed events"):
                _report_latency(client, label, samples[label])
        print("Stopping tritonserver ...", flush=True)
    return 0


def _build(args: argparse.Namespace) -> None:
    from ugt_ensemble.build import build_repository
    from ugt_ensemble.config import BuildConfig, ExportConfig, target_server_settings
    from ugt_ensemble.progress import StepProgress

    export, triton = target_server_settings("cpu-wheel")
    config = BuildConfig(
        output_dir=args.output_dir, export=ExportConfig(**export), triton=triton, target_server="cpu-wheel"
    )
    build_repository(config, StepProgress(enabled=not args.quiet))


def _check_items(results: dict, known: set[int], k: int) -> None:
    """One line per sample: are the answers K distinct catalog items (or the expected error)?"""
    for label, result in results.items():
        if not result.ok:
            print(f"{'✓' if label.startswith('malformed') else 'x'} {label}: error returned to that request only")
            continue
        items = [item for item, _ in result.items()]
        ok = len(items) == k and set(items) <= known and len(set(items)) == k
        print(f"{'✓' if ok else 'x'} {label}: {len(set(items))} distinct catalog items")


def _report_latency(client, label: str, history: str, repeats: int = 20) -> None:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        client.recommend_one(history)
        times.append((time.perf_counter() - start) * 1e3)
    print(
        f"single-request latency ({label}): p50 {statistics.median(times):.1f} ms, "
        f"min {min(times):.1f} ms over {repeats} sequential requests"
    )
