"""`python -m ugt_ensemble_dev.reliability`: run the reliability suite and write RELIABILITY.md."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from ugt_ensemble.errors import UgtEnsembleError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ugt_ensemble_dev.reliability", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("RELIABILITY.md"), help="default: RELIABILITY.md")
    parser.add_argument("--model-repository", type=Path, help="a built repository to copy (default: a fresh CPU build)")
    parser.add_argument("--short", action="store_true", help="every scenario for seconds (what CI runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ugt_ensemble_dev.reliability.report import write_report
    from ugt_ensemble_dev.reliability.suite import Durations, new_workdir, run_suite

    try:
        sections, machine = run_suite(
            new_workdir(), Durations.short() if args.short else Durations(), args.model_repository
        )
    except UgtEnsembleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python -m ugt_ensemble_dev.reliability " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"Wrote {write_report(args.output, sections, machine, command.strip())}")
    return 0 if all(s.ok for s in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
