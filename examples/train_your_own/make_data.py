"""Make a small synthetic interactions file and catalog to try the example (CI runs it on these):
`python make_data.py --out DIR` writes DIR/interactions.csv (user_id,item_id,timestamp) and DIR/items.csv.

Each user browses mostly within one level-1 cluster of the catalog, moving between neighbouring items,
so there is a pattern to learn.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from ugt_ensemble.catalog import save_catalog_csv, synthetic_catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--events", type=int, default=20, help="events per user (default: 20)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    catalog = synthetic_catalog(args.items, seed=7)
    save_catalog_csv(catalog, args.out / "items.csv")
    order = np.lexsort(catalog.codes.T[::-1])  # items sorted by code: neighbours share prefixes
    ranked = catalog.item_ids[order]
    with (args.out / "interactions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        for user in range(args.users):
            position = int(rng.integers(len(ranked)))
            for step in range(args.events):
                position = int(np.clip(position + rng.integers(1, 4), 0, len(ranked) - 1))
                if rng.random() < 0.1:
                    position = int(rng.integers(len(ranked)))
                writer.writerow([f"u{user}", int(ranked[position]), 1_700_000_000 + step * 60])
    print(f"wrote {args.out / 'interactions.csv'} ({args.users} users) and {args.out / 'items.csv'}")


if __name__ == "__main__":
    main()
