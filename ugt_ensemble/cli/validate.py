"""`python -m ugt_ensemble validate`: check a model repository offline (configs, ensemble rules, files)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "validate", parents=parents, help="check a model repository without a server", description=__doc__
    )
    p.add_argument("--model-repository", type=Path, default=Path("ensemble"), help="default: ensemble")
    p.add_argument("--model-name", help="a model that must be in the repository (e.g. the ensemble)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.repository.deployment import validate_deployment

    result = validate_deployment(args.model_repository, args.model_name)
    for name, info in result["info"].get("models", {}).items():
        print(f"  {name + '/':<16} {info['backend']:<16} versions {info['versions']}")
    for kind, reasons in result["info"].get("loadable_on", {}).items():
        print(f"  {kind + ':':<11} " + ("loadable" if not reasons else "not loadable: " + "; ".join(reasons[:3])))
    if result["valid"]:
        models = len(result["info"].get("models", {}))
        print(
            f"✓ {args.model_repository}: {models} models; configs parse, the ensemble is consistent, files are there "
            "and data files match their recorded sizes and hashes"
        )
        return 0
    print(f"x {args.model_repository}: {len(result['errors'])} problem(s):")
    for error in result["errors"]:
        print(f"  - {error}")
    return 1
