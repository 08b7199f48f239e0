"""`python -m ugt_ensemble validate`: check a model repository offline (configs, ensemble rules, files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.repository.rules import check_repository


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "validate", parents=parents, help="check a model repository without a server", description=__doc__
    )
    p.add_argument("--model-repository", type=Path, default=Path("ensemble"), help="default: ensemble")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = check_repository(args.model_repository)
    for name, info in report.info.get("models", {}).items():
        print(f"  {name + '/':<16} {info['backend']:<9} versions {info['versions']}")
    if report.valid:
        print(f"✓ {args.model_repository}: {len(report.configs)} models, configs parse and the ensemble is consistent")
        return 0
    print(f"x {args.model_repository}: {len(report.errors)} problem(s):")
    for error in report.errors:
        print(f"  - {error}")
    return 1
