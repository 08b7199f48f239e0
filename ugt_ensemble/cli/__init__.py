"""Command line: `python -m ugt_ensemble {build,serve,infer,demo,validate,bench}`; a thin layer over the library."""

from __future__ import annotations

import argparse
import sys

from ugt_ensemble import __version__
from ugt_ensemble.cli import bench, build, demo, infer, serve, validate
from ugt_ensemble.cli.common import configure_logging
from ugt_ensemble.errors import UgtEnsembleError


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print warnings and results only")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser = argparse.ArgumentParser(prog="python -m ugt_ensemble", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ugt-ensemble {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (build, serve, infer, demo, validate, bench):
        module.add_parser(subparsers, [common])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(-1 if args.quiet else args.verbose)
    try:
        return args.run(args)
    except UgtEnsembleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
