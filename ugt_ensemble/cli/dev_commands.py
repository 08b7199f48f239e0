"""`python -m ugt_ensemble bench`, whose implementation is the development package's (dev/, `ugt_ensemble_dev`).

The benchmark harness is development tooling, installed by scripts/setup.sh (`pip install -e dev/`). When it is
installed, its command module declares `bench` here; when it is not, `bench` prints one line saying how to
install it. This is the one module of the product that imports the development package, and only lazily.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from ugt_ensemble.errors import MissingDependencyError

#: The module that declares and runs `bench` (`add_parser`, like every command module).
BENCH_MODULE = "ugt_ensemble_dev.bench.cli"
INSTALL = "pip install -e dev/ (or bash scripts/setup.sh)"


def bench_module() -> ModuleType | None:
    """The development package's `bench` command module, or None where that package is not installed."""
    try:
        return importlib.import_module(BENCH_MODULE)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "ugt_ensemble_dev":
            raise  # the package is there but something it needs is not: show that
        return None


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    module = bench_module()
    if module is not None:
        module.add_parser(subparsers, parents)
        return
    p = subparsers.add_parser(
        "bench",
        parents=parents,
        help="benchmark a served repository (needs the development package: pip install -e dev/)",
        description=__doc__,
    )
    p.set_defaults(run=missing_bench, any_arguments=True)


def missing_bench(args: argparse.Namespace) -> int:
    raise MissingDependencyError(f"`bench` comes with the development package ugt-ensemble-dev: {INSTALL}")
