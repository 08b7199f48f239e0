"""Make the example's inputs: a catalog CSV, a briefly trained recommender saved as a torch.export archive
(.pt2), and a few sample histories. `python make_model.py --out DIR`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from recommender import make_recommender, train

from ugt_ensemble.catalog import save_catalog_csv, synthetic_catalog
from ugt_ensemble.histories import random_history
from ugt_ensemble.model.sources import save_step_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("byom"), help="output folder (default: byom)")
    parser.add_argument("--items", type=int, default=3000, help="catalog size (default: 3000)")
    parser.add_argument("--train-steps", type=int, default=100, help="training steps (default: 100)")
    parser.add_argument("--max-seq-length", type=int, default=256, help="longest history (default: 256)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    catalog = synthetic_catalog(args.items, seed=5)
    save_catalog_csv(catalog, args.out / "items.csv")
    model = make_recommender(catalog, max_length=args.max_seq_length)
    first, last = train(model, catalog, steps=args.train_steps)
    print(f"trained {args.train_steps} steps: loss {first:.2f} -> {last:.2f}")
    save_step_model(
        model, args.out / "model.pt2", catalog.index(), max_batch_size=64, max_seq_length=args.max_seq_length
    )
    rng = np.random.default_rng(1)
    lines = [json.dumps(random_history(catalog.item_ids, int(n), rng)) for n in (0, 3, 20, 120)]
    (args.out / "histories.jsonl").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'items.csv'}, {args.out / 'model.pt2'}, {args.out / 'histories.jsonl'}")


if __name__ == "__main__":
    main()
