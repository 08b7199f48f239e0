"""Fuzzed requests through the real server: good ones answered as when sent alone, bad ones refused, nothing dies.

Both forms of HISTORY are fuzzed: lists of events, and objects with business rules (exclusions, exclude-history,
item sets), whose answers must hold min(50, eligible) distinct eligible items and whose defects must be named.
"""

import numpy as np
import pytest

from ugt_ensemble.build import build_repository
from ugt_ensemble.catalog import synthetic_catalog
from ugt_ensemble.config import BuildConfig, ExportConfig, TritonConfig
from ugt_ensemble.runtime.constraint_data import ConstraintData
from ugt_ensemble.server import TritonServer
from ugt_ensemble_dev.reliability.fuzz_requests import GOOD_OUTCOMES
from ugt_ensemble_dev.reliability.fuzz_server import FuzzResult, fuzz_server

#: CI-sized; `python -m ugt_ensemble_dev.reliability.fuzz_server --requests 10000` is the full run.
REQUESTS = 400
RULE_REQUESTS = 300
CATEGORIES = ("books", "music", "toys", "games")


def check_outcome(outcome: FuzzResult, requests: int) -> None:
    assert outcome.requests == requests and sum(outcome.outcomes.values()) == requests
    assert outcome.wrong_answers == [], outcome.summary()
    assert outcome.unexpected == [] and set(outcome.outcomes) <= set(GOOD_OUTCOMES), outcome.summary()
    refused = outcome.outcomes.get("refused", 0) + outcome.outcomes.get("refused-batch-size", 0)
    assert refused > requests // 4 and outcome.outcomes.get("refused-batch-size", 0) > 0, outcome.summary()
    assert outcome.histories > 2 * requests  # many requests carry several histories (up to and past 64)
    assert outcome.server_alive and outcome.stubs_alive and len(outcome.stubs_after) >= 3, outcome.summary()
    rule_kinds = {kind for kind in outcome.kinds if kind.startswith("rules/")}
    assert outcome.kinds.get("valid_rules", 0) > 10 and len(rule_kinds) >= 8, outcome.kinds


def test_fuzzed_requests_get_their_answers_or_client_errors_and_the_server_survives(built, server):
    config, result = built
    outcome = fuzz_server(
        server.grpc_url,
        server.http_url,
        config.export.model_name,
        server.process.pid,
        REQUESTS,
        seed=7,
        item_ids=result.catalog.item_ids.tolist(),
        pool_size=48,
        repository=result.repository,
    )
    check_outcome(outcome, REQUESTS)


@pytest.fixture(scope="module")
def sets_repository(tmp_path_factory):
    """A repository with item sets: a boolean column, a categorical one, and a 40-item allow-list (fewer
    eligible items than K)."""
    folder = tmp_path_factory.mktemp("fuzz_sets")
    catalog = synthetic_catalog(3_000, seed=11)
    rng = np.random.default_rng(5)
    in_stock = rng.random(len(catalog.item_ids)) < 0.7
    category = np.array(CATEGORIES)[rng.integers(len(CATEGORIES), size=len(catalog.item_ids))]
    rows = zip(catalog.item_ids, catalog.codes, in_stock, category)
    lines = ["item_id,l1,l2,l3,in_stock,category"] + [f"{i},{a},{b},{c},{int(s)},{k}" for i, (a, b, c), s, k in rows]
    (folder / "items.csv").write_text("\n".join(lines) + "\n")
    (folder / "fresh.txt").write_text("\n".join(map(str, catalog.item_ids[::75][:40])) + "\n")
    export = ExportConfig(
        precision="fp32", validation_shapes=((1, 1), (4, 64)), catalog_path=folder / "items.csv",
        set_columns=("in_stock", "category"), item_sets=(("fresh", folder / "fresh.txt"),),
    )  # fmt: skip
    triton = TritonConfig.cpu(max_queue_delay_us=20_000, naive_peer=False)
    result = build_repository(BuildConfig(output_dir=folder / "repo", seed=11, export=export, triton=triton))
    return folder, result


def test_fuzzed_rules_on_a_repository_with_item_sets_obey_every_rule(sets_repository):
    folder, result = sets_repository
    names = ConstraintData.load(result.repository / "preprocess" / "1" / "catalog").set_names
    assert set(names) == {"in_stock", "fresh", *(f"category={c}" for c in CATEGORIES)}
    with TritonServer(result.repository, ready_models=["ugt_recommend"], log_path=folder / "server.log") as server:
        outcome = fuzz_server(
            server.grpc_url,
            server.http_url,
            "ugt_recommend",
            server.process.pid,
            RULE_REQUESTS,
            seed=3,
            item_ids=result.catalog.item_ids.tolist(),
            pool_size=48,
            repository=result.repository,
        )
    check_outcome(outcome, RULE_REQUESTS)
