"""`python -m ugt_ensemble analyze`: profile a built repository with NVIDIA's Triton Model Analyzer.

Writes `<repository>_tools/model_analyzer/config.yaml` for `model-analyzer profile` in local launch
mode on this machine's CPU tritonserver (backend directory, PATH, LD_LIBRARY_PATH, perf_analyzer input
data of real histories, loopback ports, a quick search), then runs it, printing each configuration and
measurement as it starts (the quick search stops when no neighbour improves: its count is bounded by the
search space, not known beforehand), and lists its reports.
SIGINT or SIGTERM stops Model Analyzer and every process it started (tritonserver, its stubs, perf_analyzer).
`--write-only` writes the config for you to run: `model-analyzer profile -f <config>` after
`eval "$(python -m ugt_ensemble env)"`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "analyze", parents=parents, description=__doc__, help="profile a repository with Triton Model Analyzer"
    )
    p.add_argument(
        "--model-repository", type=Path, default=Path("ensemble"), help="built repository (default: ensemble)"
    )
    p.add_argument("--write-only", action="store_true", help="write the config, do not run Model Analyzer")
    p.add_argument("--max-concurrency", type=int, default=4, help="quick search: highest concurrency (default: 4)")
    p.add_argument("--max-instance-count", type=int, default=2, help="quick search: most instances (default: 2)")
    p.add_argument("--max-batch-size", type=int, default=8, help="quick search: largest max_batch_size (default: 8)")
    p.add_argument("--measurement-ms", type=int, default=1000, help="perf_analyzer window (default: 1000)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.tools.analyzer_progress import search_space
    from ugt_ensemble.tools.model_analyzer import AnalyzerSearch, profile, write_config

    search = AnalyzerSearch(args.max_concurrency, args.max_instance_count, args.max_batch_size, args.measurement_ms)
    config = write_config(args.model_repository, search)
    print(f"Wrote {config}")
    if args.write_only:
        print(f'Run it with: eval "$(python -m ugt_ensemble env)"; model-analyzer profile -f {config}')
        return 0
    space = search_space(search.max_instance_count, search.max_model_batch_size)
    print(
        f"Running Model Analyzer's quick search (at most {space} configurations; Ctrl-C or SIGTERM stops it and "
        "everything it started) ...",
        flush=True,
    )
    result = profile(config, on_progress=lambda line: print(line, flush=True), search=search)
    print(f"Model Analyzer finished in {result.seconds:.0f} s (log: {result.log}). Reports in {result.export_path}:")
    for report in result.reports:
        print(f"  {report}")
    return 0
