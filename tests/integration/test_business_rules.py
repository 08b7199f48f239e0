"""Business rules inside the search, served by the real tritonserver, on a model the package has never seen (the
worked example's SASRec on `ConstrainedRecommender`): for each rule, >= 200 served answers equal the module's own
eager output with the same rules (`LocalPipeline`), hold only eligible items, and hold min(50, eligible) of them."""

import json

import numpy as np
import pytest
from recommender import make_recommender, train

from ugt_ensemble.build import build_repository
from ugt_ensemble.client import LocalPipeline, RecommendClient, with_rules
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import random_history
from ugt_ensemble.runtime.packing import PackingConfig
from ugt_ensemble.server import TritonServer

MAX_LENGTH = 64
CATEGORIES = ("books", "music", "toys", "games")
HISTORIES_PER_RULE = 200


@pytest.fixture(scope="module")
def columns(catalog):
    rng = np.random.default_rng(5)
    in_stock = rng.random(len(catalog)) < 0.7
    category = np.array(CATEGORIES)[rng.integers(len(CATEGORIES), size=len(catalog))]
    return {"in_stock": in_stock, "category": category}


@pytest.fixture(scope="module")
def served_rules(tmp_path_factory, catalog, columns):
    folder = tmp_path_factory.mktemp("rules")
    csv = folder / "items.csv"
    lines = ["item_id,l1,l2,l3,in_stock,category"]
    lines += [
        f"{i},{a},{b},{c},{int(s)},{k}"
        for i, (a, b, c), s, k in zip(catalog.item_ids, catalog.codes, columns["in_stock"], columns["category"])
    ]
    csv.write_text("\n".join(lines) + "\n")
    fresh = catalog.item_ids[:: len(catalog) // 60][:60]  # a 3 % allow-list
    (folder / "fresh.txt").write_text("\n".join(map(str, fresh)) + "\n")
    model = make_recommender(catalog, max_length=MAX_LENGTH)
    train(model, catalog, steps=10)
    export = ExportConfig(
        model_name="rules", precision="fp32", max_seq_length=MAX_LENGTH, catalog_path=csv,
        set_columns=("in_stock", "category"), item_sets=(("fresh", folder / "fresh.txt"),),
    )  # fmt: skip
    config = BuildConfig(output_dir=folder / "repo", export=export, triton=TritonConfig.cpu())
    result = build_repository(config, model=model)
    local = LocalPipeline(model, result.prepared.data, PackingConfig(MAX_LENGTH))
    with TritonServer(result.repository, ready_models=["rules"], log_path=folder / "server.log") as server:
        with RecommendClient(server.grpc_url, "rules") as client:
            yield client, local, set(fresh.tolist())


def _histories(catalog, count, seed):
    rng = np.random.default_rng(seed)
    return [random_history(catalog.item_ids, int(n), rng) for n in rng.integers(0, 120, count)]


def _eligible(catalog, columns, fresh, document):
    ids = catalog.item_ids
    keep = np.ones(len(ids), dtype=bool)
    for name in document.get("sets", ()):
        if name == "in_stock":
            keep &= columns["in_stock"]
        elif name.startswith("category="):
            keep &= columns["category"] == name.split("=", 1)[1]
        else:
            keep &= np.isin(ids, list(fresh))
    removed = set(document.get("exclude", ()))
    if document.get("exclude_history"):
        removed |= {e if isinstance(e, int) else e["item_id"] for e in document["events"]}
    return set(ids[keep].tolist()) - removed


RULES = {
    "exclude_history": lambda events, _: with_rules(events, exclude_history=True),
    "exclusions": lambda events, top: with_rules(events, exclude=top),
    "in_stock": lambda events, _: with_rules(events, sets=["in_stock"]),
    "category_and_in_stock": lambda events, _: with_rules(events, sets=["category=toys", "in_stock"]),
    "allow_list": lambda events, _: with_rules(events, sets=["fresh"], exclude_history=True),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_equals_the_eager_module_and_fills_50_eligible_items(served_rules, catalog, columns, rule):
    client, local, fresh = served_rules
    plain = local.recommend([[]])[0]
    top = [item for item, _ in plain.items()] + catalog.item_ids[:950].tolist()  # the model's favourites first
    documents = [RULES[rule](events, top) for events in _histories(catalog, HISTORIES_PER_RULE, len(rule))]
    served = client.recommend_results([json.dumps(d) for d in documents], concurrency=8)
    expected = local.recommend_results(documents)
    for document, want, got in zip(documents, expected, served):
        assert got.ok, got.error
        problems = ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None], got.scores[None], 1e-4)
        assert not problems, problems
        eligible = _eligible(catalog, columns, fresh, document)
        items = [item for item, _ in got.items()]
        assert len(items) == len(set(items)) == min(50, len(eligible))
        assert set(items) <= eligible


def test_bad_rules_fail_alone_with_a_message_naming_the_problem(served_rules):
    client, _, _ = served_rules
    documents = [
        json.dumps({"events": [1, 2], "sets": ["no_such_set"]}),
        json.dumps({"events": [1], "exclude": list(range(1001))}),
        json.dumps({"events": [1], "exlude": [3]}),
        "[1, 2, 3]",
    ]
    answers = client.recommend_results(documents)
    assert "no_such_set" in answers[0].error
    assert "1000" in answers[1].error
    assert "exlude" in answers[2].error
    assert answers[3].ok and len(answers[3].items()) == 50
