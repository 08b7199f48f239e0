"""`deploy`, `rollback`, `versions` and `variant`: versions of a built repository, live on a server with --url.

`python -m ugt_ensemble deploy --model-repository R --model new.pt2 --url 127.0.0.1:8001` builds version
N+1 beside the served one and switches the ensemble to it without failing a request; `rollback` serves an
older version again; `versions` lists them (`--cleanup --keep 3` deletes the oldest); `variant` adds a
second ensemble serving another version, for A/B tests. The server must run in explicit model-control
mode (`serve` does by default); without --url only the files change. With --url the operator key is sent
($UGT_OPERATOR_KEY, --operator-key-file, $UGT_OPERATOR_KEY_FILE, or the file `serve` wrote on this machine).
Deploy, rollback, cleanup and variant take the repository's lock: a second one waits (--lock-timeout).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ugt_ensemble.cli.item_set_flags import add_item_set_flags, item_set_changes
from ugt_ensemble.repository.lock import DEFAULT_TIMEOUT_S


def add_parser(subparsers: argparse._SubParsersAction, parents: list) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model-repository", type=Path, default=Path("ensemble"), help="default: ensemble")
    common.add_argument("--url", help="gRPC address of the running server to update (default: files only)")
    common.add_argument(
        "--operator-key-file", type=Path,
        help="file with the server's operator key, sent with --url (default: $UGT_OPERATOR_KEY_FILE, else the "
        "operator.key that `serve` wrote in its run-state folder; $UGT_OPERATOR_KEY, the key itself, wins)",
    )  # fmt: skip
    common.add_argument(
        "--lock-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
        help="how long to wait while another deploy/rollback/cleanup/variant holds the repository "
        "(default: %(default).0f; 0: fail at once)",
    )  # fmt: skip
    p = subparsers.add_parser("deploy", parents=[*parents, common], help="build and serve a new version",
                              description=__doc__)  # fmt: skip
    p.add_argument("--model", type=Path, help="the new model step: a torch.export archive (.pt2)")
    p.add_argument("--onnx", type=Path, help="the new model step as ONNX")
    p.add_argument("--checkpoint", type=Path, help="new reference UGT weights")
    p.add_argument("--catalog", type=Path, help="the new version's catalog (default: the served one's)")
    sets = p.add_argument_group(
        "item sets", "default: the served version's; given, these replace them all (--set-column needs --catalog)"
    )
    add_item_set_flags(sets)
    sets.add_argument(
        "--allow-set-changes", action="store_true",
        help="deploy even if the new version drops an item set the served version serves (a set flag left out, "
        "a category value gone, a column changing kind, e.g. one 'maybe' in a boolean column); without it such "
        "a deploy is refused, naming the set, the column and the row, since requests naming the set would fail",
    )  # fmt: skip
    p.add_argument("--version", type=int, help="its number (default: the next)")
    p.add_argument("--no-switch", action="store_true", help="load it but keep serving the current version")
    p.set_defaults(run=run_deploy)
    p = subparsers.add_parser("rollback", parents=[*parents, common], help="serve an older version again")
    p.add_argument("--version", type=int, help="the version to serve (default: the newest older one)")
    p.set_defaults(run=run_rollback)
    p = subparsers.add_parser("versions", parents=[*parents, common], help="list versions (and clean up)")
    p.add_argument("--cleanup", action="store_true",
                   help="delete all but the newest --keep and those an ensemble or variant serves")  # fmt: skip
    p.add_argument("--keep", type=int, default=3, help="versions --cleanup keeps (default: 3)")
    p.set_defaults(run=run_versions)
    p = subparsers.add_parser("variant", parents=[*parents, common], help="add an A/B variant ensemble")
    p.add_argument("--name", required=True, help="the variant ensemble's name, e.g. ugt_recommend_b")
    p.add_argument("--version", type=int, required=True, help="the version it serves")
    p.set_defaults(run=run_variant)


def _rollout(args: argparse.Namespace):  # noqa: ANN202 - a Rollout, imported late to keep --help fast
    from ugt_ensemble.serving.live import resolve_operator_key
    from ugt_ensemble.serving.rollout import Rollout

    key = resolve_operator_key(args.url, args.operator_key_file)
    return Rollout(args.model_repository, args.url, key, args.lock_timeout)


def _where(args: argparse.Namespace, rollout) -> str:  # noqa: ANN001
    waited = f" (waited {rollout.lock_waited_s:.1f} s for the repository's lock)" if rollout.lock_waited_s >= 1 else ""
    return (f" on {args.url}" if args.url else "") + waited


def run_deploy(args: argparse.Namespace) -> int:
    from ugt_ensemble.progress import StepProgress
    from ugt_ensemble.serving.version_sets import require_catalog_for_columns

    changes = {
        k: v for k, v in (("model_file", args.model), ("onnx_path", args.onnx), ("checkpoint", args.checkpoint)) if v
    }
    changes.update(item_set_changes(args))  # they replace the served version's item sets
    require_catalog_for_columns(changes, args.catalog)
    rollout = _rollout(args)
    number = rollout.deploy(
        changes,
        args.catalog,
        not args.no_switch,
        args.version,
        StepProgress(enabled=not args.quiet),
        allow_set_changes=args.allow_set_changes,
    )
    if rollout.unchanged is not None:
        print(f"Nothing deployed to {args.model_repository}: {rollout.unchanged.removeprefix('nothing to deploy: ')}")
        return 0
    state = "serving it" if not args.no_switch else f"still serving version {rollout.repo.pinned()}"
    print(f"Deployed version {number} to {args.model_repository}{_where(args, rollout)}; {state}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    rollout = _rollout(args)
    version = rollout.rollback(args.version)
    print(f"{args.model_repository} serves version {version}{_where(args, rollout)}")
    return 0


def run_versions(args: argparse.Namespace) -> int:
    rollout = _rollout(args)
    if args.cleanup:
        removed = rollout.cleanup(args.keep)
        print(f"Deleted versions {removed}" if removed else "Nothing to delete")
        for version, names in sorted(rollout.kept_for.items()):
            print(f"Kept version {version}: served by {', '.join(names)}")
    numbers = rollout.repo.numbers()
    print(f"  {'VERSION':>7}  {'CREATED':<25}  {'CATALOG (items, fingerprint)':<28}  MODEL")
    for v in rollout.repo.versions():
        catalog = f"{v.catalog.get('items', '?')} items {v.catalog.get('fingerprint', '')}".strip()
        mark = "*" if v.pinned else " "
        print(f"{mark} {v.number:>7}  {v.created:<25}  {catalog:<28}  {v.model_source}")
    for name, version in rollout.repo.variants().items():
        if version is None:
            print(f"  variant {name}: its config is missing or pins no single version (run validate)")
        elif version not in numbers:
            print(f"  variant {name} pins version {version}, which is missing (run validate)")
        else:
            print(f"  variant {name} serves version {version}")
    if rollout.server is not None:
        for version, names in sorted(rollout.server.served_versions(rollout.repo.steps).items()):
            print(f"  on {args.url}: version {version} served by {', '.join(names)}")
    return 0


def run_variant(args: argparse.Namespace) -> int:
    rollout = _rollout(args)
    path = rollout.add_variant(args.name, args.version)
    loaded = f", loaded{_where(args, rollout)}" if args.url else ""
    print(f"Wrote {path}: {args.name} serves version {args.version}{loaded}")
    return 0
