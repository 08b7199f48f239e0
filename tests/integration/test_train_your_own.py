"""A newcomer's own model, as README shows it: examples/train_your_own/run.sh trains a small model on an
interactions file and a catalog (a small synthetic pair here), builds, serves and queries it; and the
Python API's benchmark() loads the repository it wrote with histories of its own catalog."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from ugt_ensemble import ExportConfig, ServingExporter, TritonConfig, TritonServer
from ugt_ensemble.catalog import save_catalog_csv, synthetic_catalog

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_your_own"


def test_the_train_your_own_example_trains_builds_and_serves(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TRAIN_ARGS": "--epochs 2 --max-seq-length 32"}
    done = subprocess.run(["bash", str(EXAMPLE / "run.sh"), str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "epoch 2: loss" in done.stdout and "catalog validity: 100.0%" in done.stdout
    assert all(f"history {i}: 50 items" in done.stdout for i in (1, 2, 3, 4, 5)), done.stdout[-2000:]
    assert f"Served {tmp_path}/model.pt2" in done.stdout


def test_exporter_benchmark_uses_the_exporters_own_repository_and_catalog(tmp_path, monkeypatch, caplog):
    sys.path.insert(0, str(EXAMPLE))
    from model import make_recommender

    catalog = synthetic_catalog(500, seed=9)
    catalog = type(catalog)(catalog.item_ids + 50_000, catalog.codes, catalog.codebook_sizes, "ids above 50000")
    save_catalog_csv(catalog, tmp_path / "items.csv")
    monkeypatch.chdir(tmp_path)  # no ./ensemble here: the benchmark used to look there
    export = ExportConfig(precision="fp32", max_seq_length=32, catalog_path=str(tmp_path / "items.csv"),
                          validation_shapes=((1, 1),))  # fmt: skip
    exporter = ServingExporter(export, TritonConfig.cpu(), show_progress=False)
    report = exporter.deploy_full_pipeline(make_recommender(catalog, d_model=16, max_length=32), "ensemble_api")
    assert report["valid"], report["errors"]
    import ugt_ensemble.api.benchmark as benchmark_module

    sent: list[int] = []
    original = benchmark_module.random_history

    def recording(item_ids, length, rng):  # noqa: ANN001, ANN202 - spies on the ids the benchmark draws from
        events = original(item_ids, length, rng)
        sent.extend(e if isinstance(e, int) else e["item_id"] for e in events)
        return events

    monkeypatch.setattr(benchmark_module, "random_history", recording)
    with TritonServer(tmp_path / "ensemble_api", ready_models=["ugt_recommend"]) as server:
        with caplog.at_level(logging.WARNING):
            result = exporter.benchmark(server.grpc_url, "ugt_recommend", num_requests=20)
    assert "no repository" not in caplog.text  # was: "no repository at ensemble", and ids 1..10000
    assert sent and set(sent) <= set(catalog.item_ids.tolist())
    assert result["successful_requests"] == 20 and result["failed_requests"] == 0


def shop_export(tmp_path) -> None:
    """make_data.py's pair, rewritten as a shop exports it: ISO 8601 times and the shop's own event names."""
    make = [sys.executable, str(EXAMPLE / "make_data.py"), "--out", str(tmp_path), "--users", "120"]
    subprocess.run(make, check=True, capture_output=True)
    names = ("detail", "detail", "detail", "addtocart", "transaction")
    with (tmp_path / "interactions.csv").open() as source, (tmp_path / "events.csv").open("w") as out:
        out.write("visitorid,itemid,timestamp,event\n")
        for n, line in enumerate(source.read().splitlines()[1:]):
            user, item, stamp = line.split(",")
            moment = datetime.fromtimestamp(int(stamp), timezone.utc).isoformat().replace("+00:00", "Z")
            out.write(f"{user},{item},{moment},{names[n % len(names)]}\n")


def train(tmp_path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", "--interactions", str(tmp_path / "events.csv"), "--catalog",
               str(tmp_path / "items.csv"), "--out", str(tmp_path / "out"), "--epochs", "1", "--max-seq-length", "16",
               "--user-column", "visitorid", "--item-column", "itemid", "--event-column", "event",
               *options]  # fmt: skip
    return subprocess.run(command, cwd=EXAMPLE, capture_output=True, text=True, timeout=600)


def test_a_shop_export_with_iso_times_and_its_own_event_names_trains_with_those_types(tmp_path):
    shop_export(tmp_path)  # this export stopped train.py with "ValueError: could not convert string to float"
    done = train(tmp_path, "--event-map", "detail=view,addtocart=cart,transaction=purchase")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "event types: view 1440, click 0, cart 480, purchase 480" in done.stdout  # was: every event a view
    assert "popularity: recall@10" in done.stdout and "model: recall@10" in done.stdout
    first = json.loads((tmp_path / "out" / "histories.jsonl").read_text().splitlines()[0])
    assert {event["type"] for event in first} == {"view", "cart", "purchase"}


def test_an_unmapped_event_name_is_refused_naming_the_file_line_and_column(tmp_path):
    shop_export(tmp_path)
    done = train(tmp_path, "--event-map", "detail=view,transaction=purchase")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        f"error: interactions {tmp_path / 'events.csv'}: 1 invalid row(s):\n  line 5, column 'event': event "
        "type 'addtocart' is not mapped (480 event(s)); map it with --event-map 'addtocart=view'" in done.stderr
    )
