"""`python -m ugt_ensemble infer`: send raw histories to a running ensemble and print recommendations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ugt_ensemble.cli.common import print_json_results, print_results
from ugt_ensemble.errors import InputFileError


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    p = subparsers.add_parser(
        "infer", parents=parents, help="send raw histories over gRPC and print the answers", description=__doc__
    )
    p.add_argument(
        "histories", nargs="*", help='inline JSON histories, e.g. \'[1, 2, {"item_id": 3, "type": "cart"}]\''
    )
    p.add_argument("--file", type=Path, help="a file with one JSON history per line ('-': stdin)")
    p.add_argument("--url", default="127.0.0.1:8001", help="gRPC address (default: 127.0.0.1:8001)")
    p.add_argument("--model-name", default="ugt_recommend", help="ensemble name (default: ugt_recommend)")
    p.add_argument("--top", type=int, default=10, help="items to print per history (default: 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object per history instead")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default: 8)")
    rules = p.add_argument_group("business rules (applied to every history sent; README, \"Business rules\")")
    rules.add_argument("--exclude", action="append", default=[], metavar="IDS",
                       help="item ids never to return, comma-separated (repeatable)")  # fmt: skip
    rules.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME",
                       help="return only items of this item set (repeatable: the sets intersect)")  # fmt: skip
    history = rules.add_mutually_exclusive_group()
    history.add_argument("--exclude-history", dest="exclude_history", action="store_const", const=True, default=None,
                         help="never return the items of the history")  # fmt: skip
    history.add_argument("--include-history", dest="exclude_history", action="store_const", const=False,
                         help="allow the items of the history (which the repository may exclude)")  # fmt: skip
    p.set_defaults(run=run)


def apply_rules(histories: list[str], args: argparse.Namespace) -> list:
    """Each history as the document with the flags' rules (unchanged when no rule flag is given)."""
    try:
        exclude = [int(v) for part in args.exclude for v in part.split(",") if v.strip()]
    except ValueError:
        raise InputFileError(f"--exclude takes comma-separated integer item ids, got {args.exclude}") from None
    if not (exclude or args.sets or args.exclude_history is not None):
        return histories
    from ugt_ensemble.client.results import with_rules

    try:
        return [with_rules(h, args.exclude_history, exclude, args.sets) for h in histories]
    except ValueError as exc:
        raise InputFileError(f"rule flags: {exc} (a history that is not a JSON list of events)") from None


def read_histories(path: Path) -> list[str]:
    """Non-blank lines of `path` ('-' for stdin), each one HISTORY document."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"histories file {path}: cannot read ({exc})") from None
    return [line for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    histories = list(args.histories) + (read_histories(args.file) if args.file else [])
    if not histories:
        raise InputFileError("no histories: pass them inline or with --file FILE (one JSON list per line)")
    histories = apply_rules(histories, args)
    from ugt_ensemble.client.grpc_client import RecommendClient

    with RecommendClient(args.url, args.model_name) as client:
        results = client.recommend_results(histories, concurrency=args.concurrency)
    if args.json:
        print_json_results(results)
    else:
        print_results(results, [f"history {i + 1}" for i in range(len(histories))], args.top)
    return 0 if all(r.ok for r in results) else 1
