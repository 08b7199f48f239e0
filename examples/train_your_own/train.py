"""Train the example recommender on an interactions file and a catalog, and save it for `build --model`.

    python train.py --interactions interactions.csv --catalog items.csv --out DIR

`interactions.csv`: `user_id,item_id[,timestamp]` (a header line is optional); each user's events are
ordered by timestamp (else by file order), items not in the catalog are skipped. `items.csv`: the
catalog, `item_id,l1,l2,l3`. The last event of each user is held out and reported as hit rate @10.
Writes DIR/model.pt2 (a torch.export archive) and DIR/histories.jsonl (a few users' histories).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from model import make_recommender

from ugt_ensemble.catalog import load_catalog
from ugt_ensemble.model import save_step_model
from ugt_ensemble.model.training import CatalogCandidates, catalog_loss
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories


def read_sequences(path: Path, known: np.ndarray) -> list[list[int]]:
    """Each user's item ids, oldest first, catalog items only."""
    events: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.reader(handle)):
            if not row or (row_number == 0 and not row[1].strip().lstrip("-").isdigit()):
                continue  # blank line or header
            stamp = float(row[2]) if len(row) > 2 and row[2].strip() else float(row_number)
            events[row[0]].append((stamp, row_number, int(row[1])))
    known_set = set(known.tolist())
    sequences = [[item for _, _, item in sorted(rows) if item in known_set] for rows in events.values()]
    return [s for s in sequences if len(s) >= 2]


def examples(sequences: list[list[int]], max_length: int) -> tuple[list, list, list, list]:
    """(train histories, train targets, test histories, test targets): every prefix predicts its next item;
    each user's last item is the test target."""
    train_h, train_t, test_h, test_t = [], [], [], []
    for items in sequences:
        for t in range(1, len(items) - 1):
            train_h.append(items[max(0, t - max_length) : t])
            train_t.append(items[t])
        test_h.append(items[-1 - max_length : -1])
        test_t.append(items[-1])
    return train_h, train_t, test_h, test_t


def pack(histories: list[list[int]], index, max_length: int) -> list[torch.Tensor]:  # noqa: ANN001
    """The six encoder tensors (N, max_length), packed exactly as preprocess packs them."""
    rows = [History(np.array(h, dtype=np.int64), np.ones(len(h), dtype=np.int64)) for h in histories]
    packed = pack_histories(rows, index, PackingConfig(max_length, (max_length,)))
    return [torch.from_numpy(packed.tensors[name]) for name in packed.tensors]


def hit_rate(model, index, histories, targets, max_length: int, k: int = 10) -> float:  # noqa: ANN001
    """Share of held-out items among the model's top k (catalog-constrained beam search)."""
    model.eval()
    with torch.no_grad():
        codes, _ = model(*pack(histories, index, max_length))
    items = index.items_of(codes[:, :k].numpy())  # (N, k) item ids, -1 where no item
    return float(np.mean([t in row for t, row in zip(targets, items)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seq-length", type=int, default=64, help="longest history (default: 64)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=32)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(args.catalog)
    index = catalog.index()
    sequences = read_sequences(args.interactions, index.item_ids)
    train_h, train_t, test_h, test_t = examples(sequences, args.max_seq_length)
    print(f"{len(sequences)} users, {len(train_t)} training examples, {len(catalog)} catalog items")
    inputs = pack(train_h, index, args.max_seq_length)
    targets = torch.from_numpy(index.codes_of(np.array(train_t))[0])
    model = make_recommender(catalog, args.d_model, args.max_seq_length)
    candidates = CatalogCandidates(catalog.prefix_tables())
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    print(f"hit rate @10 before training: {hit_rate(model, index, test_h, test_t, args.max_seq_length):.3f}")
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
        rate = hit_rate(model, index, test_h, test_t, args.max_seq_length)
        print(f"epoch {epoch + 1}: loss {total / len(order):.3f}, hit rate @10 {rate:.3f}")
    save_step_model(model.eval(), args.out / "model.pt2", index, max_batch_size=64, max_seq_length=args.max_seq_length)
    lines = [json.dumps(h) for h in test_h[:5]]
    (args.out / "histories.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'model.pt2'} and {args.out / 'histories.jsonl'}")


if __name__ == "__main__":
    main()
