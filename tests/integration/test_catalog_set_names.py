"""Item sets named by a real catalog's values (spaces, '&', an apostrophe, '/', non-ASCII letters, a value written
in decomposed Unicode on half its rows), end to end: the real CLI builds with `--set-column category`, a real
tritonserver serves it, and a request naming a set exactly as the catalog writes it (over gRPC through the client
and `infer`, and as raw UTF-8 JSON over HTTP) gets only that set's items."""

import dataclasses
import json
import subprocess
import sys
import unicodedata
import urllib.request

import numpy as np
import pytest

from ugt_ensemble.client import RecommendClient, RecommendError, with_rules
from ugt_ensemble.histories import random_history
from ugt_ensemble.server import TritonServer

PYTHON = [sys.executable, "-m", "ugt_ensemble"]
#: The catalog's values: "Café/Bäckerei" is written composed (NFC) on half its rows, decomposed (NFD) on the rest.
VALUES = ("men's clothing", "Home & Garden", "Café/Bäckerei", unicodedata.normalize("NFD", "Café/Bäckerei"))
SMALL = "家居 用品"  # 20 items: answers are padded


@pytest.fixture(scope="module")
def served(tmp_path_factory, catalog, tiny_config):
    folder = tmp_path_factory.mktemp("set_names")
    values = [SMALL if n % 100 == 0 else VALUES[n % 4] for n in range(len(catalog))]
    rows = [f'{i},{a},{b},{c},"{v}"' for i, (a, b, c), v in zip(catalog.item_ids, catalog.codes.tolist(), values)]
    (folder / "items.csv").write_text("item_id,l1,l2,l3,category\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (folder / "tiny.json").write_text(json.dumps(dataclasses.asdict(tiny_config)))
    build = subprocess.run(
        [*PYTHON, "build", "--output-dir", "repo", "--target-server", "cpu-wheel", "--catalog", "items.csv",
         "--model-config", "tiny.json", "--set-column", "category", "--max-batch-size", "8", "--max-seq-length", "64"],
        capture_output=True, text=True, cwd=folder, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    members = {unicodedata.normalize("NFC", f"category={v}"): set() for v in (*VALUES, SMALL)}
    for item, value in zip(catalog.item_ids.tolist(), values):
        members[unicodedata.normalize("NFC", f"category={value}")].add(item)
    with TritonServer(folder / "repo", ready_models=["ugt_recommend"], log_path=folder / "server.log") as server:
        yield server, members


def _histories(catalog, count):
    rng = np.random.default_rng(4)
    return [random_history(catalog.item_ids, int(n), rng) for n in rng.integers(0, 40, count)]


def test_a_request_naming_a_set_as_the_catalog_writes_it_gets_only_its_items(served, catalog):
    server, members = served
    assert sorted(map(len, members.values())) == [20, 480, 500, 1000]
    histories = _histories(catalog, 8)
    with RecommendClient(server.grpc_url) as client:
        for name in [*members, unicodedata.normalize("NFD", "category=Café/Bäckerei")]:
            allowed = members[unicodedata.normalize("NFC", name)]
            answers = client.recommend([with_rules(h, sets=[name]) for h in histories])
            for answer in answers:
                items = [item for item, _ in answer.items()]
                assert set(items) <= allowed and len(items) == min(50, len(allowed)), (name, items[:5])
        known = "category=Café/Bäckerei, category=Home & Garden, category=men's clothing, category=家居 用品"
        with pytest.raises(RecommendError, match=f'unknown item set "category=men’s clothing"; known sets: {known}'):
            client.recommend_one(with_rules([1], sets=["category=men’s clothing"]))  # a typographic apostrophe


def test_set_names_travel_as_utf8_json_over_http_and_through_infer(served, catalog):
    server, members = served
    name = "category=Café/Bäckerei"
    document = json.dumps({"events": [int(catalog.item_ids[0])], "sets": [name]}, ensure_ascii=False)
    body = {"inputs": [{"name": "HISTORY", "datatype": "BYTES", "shape": [1, 1], "data": [document]}]}
    request = urllib.request.Request(
        f"{server.http_url}/v2/models/ugt_recommend/infer",
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),  # raw UTF-8 bytes on the wire, no \u escapes
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        outputs = {o["name"]: o["data"] for o in json.load(response)["outputs"]}
    assert set(outputs["ITEM_IDS"]) <= members[name] and len(outputs["ITEM_IDS"]) == 50
    shown = subprocess.run(
        [*PYTHON, "infer", "--url", server.grpc_url, "--json", "--set", "category=Home & Garden", "[1, 2]", "[]"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    for line in shown.stdout.splitlines():
        items = [i for i in json.loads(line)["item_ids"] if i != -1]
        assert set(items) <= members["category=Home & Garden"] and len(items) == 50
