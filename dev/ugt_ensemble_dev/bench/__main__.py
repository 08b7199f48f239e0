"""`python -m ugt_ensemble_dev.bench noop`: CPU per request with the model step replaced by a no-op, and the
two-hop floor (`bench.noop`), written as a Markdown report and its runs as JSON.

(The load benchmark itself is `python -m ugt_ensemble bench`.)
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ugt_ensemble.cli.common import int_list
from ugt_ensemble.errors import UgtEnsembleError

#: The build measured when no --model-repository is given (the issue's default build).
DEFAULT_BUILD = ("--synthetic-items", "2000", "--seed", "3")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ugt_ensemble_dev.bench", description=__doc__)
    commands = p.add_subparsers(dest="command", required=True)
    noop = commands.add_parser("noop", help="preprocess + postprocess CPU per request, model step a no-op")
    noop.add_argument(
        "--model-repository",
        type=Path,
        metavar="DIR",
        help=f"a built repository (copied, never changed); default: build {' '.join(DEFAULT_BUILD)}",
    )
    noop.add_argument(
        "--perf-input",
        type=Path,
        metavar="FILE",
        help="perf_analyzer input data; default: DIR_tools/perf_input_<ensemble>.json",
    )
    noop.add_argument(
        "--output",
        type=Path,
        default=Path("benchmarks/noop/report.md"),
        metavar="REPORT.md",
        help="the report (and REPORT.json beside it); default: benchmarks/noop/report.md",
    )
    noop.add_argument("--concurrency", type=int_list, default=(1, 2, 4, 8), metavar="N[,N]", help="default: 1,2,4,8")
    noop.add_argument("--rounds", type=int, default=3, metavar="N", help="interleaved rounds; default: 3")
    noop.add_argument("--measurement-ms", type=int, default=4000, metavar="MS", help="perf_analyzer window")
    noop.add_argument("--stability", type=int, default=50, metavar="PERCENT", help="perf_analyzer's stability band")
    noop.add_argument("--work-dir", type=Path, metavar="DIR",
                      help="where the copies, server logs and perf_analyzer logs go (kept); default: a temporary "
                           "folder, removed")  # fmt: skip
    return p


def _build(folder: Path) -> Path:
    repository = folder / "ensemble"
    command = [sys.executable, "-m", "ugt_ensemble", "build", "--output-dir", str(repository), *DEFAULT_BUILD]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return repository


def run_noop_command(args: argparse.Namespace, workdir: Path, command: str) -> Path:
    from ugt_ensemble.repository.input_data import input_data_files
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble_dev.bench.noop import NoopConfig, run_noop
    from ugt_ensemble_dev.bench.noop_report import write_report

    info = RepositoryInfo.read(args.model_repository or _build(workdir))
    input_data = args.perf_input or input_data_files(info.path, info).ensemble
    config = NoopConfig(tuple(args.concurrency), args.rounds, args.measurement_ms, args.stability)
    run = run_noop(info, workdir, input_data, config)
    report, raw = write_report(run, args.output, command)
    print(report.read_text(encoding="utf-8"))
    print(f"Wrote {report} and {raw}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = "python -m ugt_ensemble_dev.bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    workdir = args.work_dir or Path(tempfile.mkdtemp(prefix="ugt-noop-"))
    try:
        run_noop_command(args, workdir, command)
    except (UgtEnsembleError, FileExistsError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.work_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
