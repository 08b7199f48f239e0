"""`python -m ugt_ensemble env`: print the shell exports that run the CPU wheels' `tritonserver` and
`perf_analyzer` by hand: `eval "$(python -m ugt_ensemble env)"`, then
`tritonserver --model-repository=ensemble --backend-directory="$UGT_TRITON_BACKEND_DIR"`, plus the operator
key's restriction flags (README, Security; any local user reaches even a loopback port):
`--{http-restricted-api,grpc-restricted-protocol}=model-repository,logging,trace,shared-memory:ugt-operator-key=KEY`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "env", parents=parents, description=__doc__, help="print the exports for bare tritonserver / perf_analyzer"
    )
    p.add_argument(
        "--backend-dir",
        type=Path,
        default=None,
        help="where to assemble the Python backend for the wheel's tritonserver "
        "(default: <venv>/var/ugt-ensemble/backends)",
    )
    p.add_argument("--json", action="store_true", help="print the variables as one JSON object instead")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ugt_ensemble.tools.environment import tool_environment

    environment = tool_environment(args.backend_dir)
    if args.json:
        keys = ("PATH", "LD_LIBRARY_PATH", "UGT_TRITON_BACKEND_DIR")
        env = environment.environ()
        print(json.dumps({key: env[key] for key in keys if key in env}, indent=2))
    else:
        print(environment.shell_exports(), end="")
    return 0
