"""Command line: `python -m ugt_ensemble COMMAND`; a thin layer over the library.

Each command module declares its flags with nothing heavy imported; its `run` imports what it needs, so
commands that do not export stay quick to start.
"""

from __future__ import annotations

import argparse
import sys

from ugt_ensemble import __version__
from ugt_ensemble.cli import (
    analyze,
    build,
    demo,
    dev_commands,
    env,
    infer,
    k8s,
    semantic_ids,
    serve,
    stats,
    validate,
    versions,
)
from ugt_ensemble.cli.common import configure_logging
from ugt_ensemble.cli.flags import name_values
from ugt_ensemble.errors import UgtEnsembleError

#: `bench` comes from the development package (dev_commands loads it lazily, or says how to install it).
COMMANDS = (build, serve, infer, demo, validate, dev_commands, versions, stats, k8s, env, analyze, semantic_ids)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print warnings and results only")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser = argparse.ArgumentParser(prog="python -m ugt_ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ugt-ensemble {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(subparsers, [common])
    return name_values(parser)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown and not getattr(args, "any_arguments", False):  # only the stub of a missing `bench` takes any
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        configure_logging(-1 if args.quiet else args.verbose)
        return args.run(args)
    except UgtEnsembleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
