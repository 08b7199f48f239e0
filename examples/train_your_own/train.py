"""Train the example recommender on a shop's interactions export and a catalog, evaluate it against
popularity, and save it for `build --model`.

    python train.py --interactions events.csv --catalog items.csv --out DIR \\
        [--event-map "detail=view,addtocart=cart,transaction=purchase"]

The export (CSV with a header line, or Parquet) is read by column name: user_id, item_id, and optionally
timestamp (ISO 8601, or epoch seconds or milliseconds; else the file's order) and event_type (view, click,
cart, purchase, or the shop's own names through --event-map; else every event is a view). --user-column,
--item-column, --time-column and --event-column name other columns. Items not in the catalog are skipped.
The model sees each event's type as its encoder token type, as it will when serving. Each user's last
event is held out: recall@10 and NDCG@10 of the model and of a popularity baseline are printed and
written to DIR/evaluation.json. Writes DIR/model.pt2 (a torch.export archive) and DIR/histories.jsonl (a
few users' histories, with their event types).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from model import make_recommender

from ugt_ensemble.catalog import load_catalog
from ugt_ensemble.errors import UgtEnsembleError
from ugt_ensemble.model import save_step_model
from ugt_ensemble.model.evaluation import Ranking, evaluate, evaluate_popularity, leave_last_out
from ugt_ensemble.model.interaction_fields import parse_event_map
from ugt_ensemble.model.interactions import InteractionFormat, read_interactions
from ugt_ensemble.model.training import CatalogCandidates, catalog_loss
from ugt_ensemble.runtime.contract import EVENT_TYPES
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories

K = 10


def pack(histories: list[History], index, max_length: int) -> list[torch.Tensor]:  # noqa: ANN001
    """The six encoder tensors (N, max_length), with the events' token types, packed as preprocess packs them."""
    packed = pack_histories(histories, index, PackingConfig(max_length, (max_length,)))
    return [torch.from_numpy(packed.tensors[name]) for name in packed.tensors]


def rank(model, index, histories: list[History], max_length: int, batch: int = 256) -> np.ndarray:  # noqa: ANN001
    """The model's top items (N, 50) for each history (catalog-constrained beam search; -1 where none)."""
    model.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(histories), batch):
            codes, _ = model(*pack(histories[start : start + batch], index, max_length))
            rows.append(index.items_of(codes.numpy()))
    return np.concatenate(rows) if rows else np.zeros((0, K), dtype=np.int64)


def interaction_format(args: argparse.Namespace) -> InteractionFormat:
    """Column names (explicit ones required) and the event map from the command line."""
    given = {"user": args.user_column, "item": args.item_column, "timestamp": args.time_column,
             "event": args.event_column}  # fmt: skip
    names = {role: value for role, value in given.items() if value is not None}
    return InteractionFormat(**names, require_timestamp=args.time_column is not None,
                             require_event=args.event_column is not None,
                             event_map=parse_event_map(args.event_map or ""))  # fmt: skip


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=Path, required=True, help="CSV (header line) or Parquet")
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--user-column", help="default: user_id")
    parser.add_argument("--item-column", help="default: item_id")
    parser.add_argument("--time-column", help="default: timestamp, if there is one (else the file's order)")
    parser.add_argument("--event-column", help="default: event_type, if there is one (else every event a view)")
    parser.add_argument("--event-map", help=f"NAME=TYPE,... with TYPE in {', '.join(EVENT_TYPES)} or skip")
    parser.add_argument("--max-seq-length", type=int, default=64, help="longest history (default: 64)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--max-train-examples", type=int, help="train on a random sample of this many prefixes")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(args.catalog)
    index = catalog.index()
    interactions = read_interactions(args.interactions, interaction_format(args))
    histories = interactions.histories(index.item_ids)
    if not histories:
        raise UgtEnsembleError(f"{interactions.source}: no user has 2 or more events on catalog items")
    split = leave_last_out(histories, args.max_seq_length)
    rng = np.random.default_rng(args.seed)
    chosen = np.arange(len(split.train_targets))
    if args.max_train_examples is not None and args.max_train_examples < len(chosen):
        chosen = np.sort(rng.choice(chosen, args.max_train_examples, replace=False))
    types = np.bincount(np.concatenate([h.token_types for h in histories]), minlength=len(EVENT_TYPES) + 1)
    print(f"{len(interactions)} events ({interactions.skipped} skipped by the event map), {len(histories)} users "
          f"with 2+ catalog events, {len(chosen)} training examples, {len(catalog)} catalog items; event types: "
          + ", ".join(f"{name} {types[i + 1]}" for i, name in enumerate(EVENT_TYPES)))  # fmt: skip
    inputs = pack([split.train_histories[i] for i in chosen], index, args.max_seq_length)
    targets = torch.from_numpy(index.codes_of(split.train_targets[chosen])[0])
    model = make_recommender(catalog, args.d_model, args.max_seq_length, seed=args.seed)
    candidates = CatalogCandidates(catalog.prefix_tables())
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    baseline = evaluate_popularity(split, histories, K)
    for epoch in range(args.epochs):
        model.train()
        order, total = torch.randperm(len(targets)), 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            loss = catalog_loss(model, candidates, *(t[batch] for t in inputs), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        result = evaluate("model", rank(model, index, split.test_histories, args.max_seq_length), split.test_targets, K)
        print(f"epoch {epoch + 1}: loss {total / max(len(order), 1):.3f}, {result.describe()}")
    report(args.out, result if args.epochs else None, baseline)
    save_step_model(model.eval(), args.out / "model.pt2", index, max_batch_size=64, max_seq_length=args.max_seq_length)
    lines = [json.dumps([{"item_id": int(i), "type": EVENT_TYPES[t - 1]} for i, t in zip(h.item_ids, h.token_types)])
             for h in split.test_histories[:5]]  # fmt: skip
    (args.out / "histories.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'model.pt2'} and {args.out / 'histories.jsonl'}")


def report(out: Path, model: Ranking | None, baseline: Ranking) -> None:
    """Print the held-out comparison and write it to out/evaluation.json."""
    print(f"held-out last events: {baseline.describe()}")
    if model is not None:
        print(f"held-out last events: {model.describe()}")
        verdict = "beats" if model.ndcg > baseline.ndcg else "does not beat"
        print(f"the model {verdict} popularity on NDCG@{K}")
    rows = {r.name: {"recall": r.recall, "ndcg": r.ndcg, "users": r.users} for r in (model, baseline) if r}
    (out / "evaluation.json").write_text(json.dumps({"k": K, **rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        main()
    except UgtEnsembleError as exc:
        sys.exit(f"error: {exc}")
