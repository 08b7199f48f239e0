"""`--exclude-history`: items already in the user's history never come back, and the search fills all 50 slots
with the model's next best items (the rule is applied inside the beam search, not after it)."""

import json

import pytest

from ugt_ensemble.client import LocalPipeline, RecommendClient
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json
from ugt_ensemble.server import TritonServer


@pytest.fixture(scope="module")
def excluding(build_for_test):
    config, result = build_for_test(exclude_history=True)
    with TritonServer(result.repository, ready_models=[config.export.model_name]) as server:
        yield config, result, server


def test_history_items_are_never_returned_and_every_answer_holds_50(excluding):
    config, result, server = excluding
    local = LocalPipeline(result.model, result.prepared.data, config.packing, exclude_history=True)
    plain = LocalPipeline(result.model, result.prepared.data, config.packing)
    favourites = [item for item, _ in plain.recommend(["[]"])[0].items()]
    third = result.catalog.item_ids[: len(result.catalog.item_ids) // 3].tolist()[-1024:]
    histories = [history_json(favourites), history_json(favourites[:3] + [999_999]), history_json(third), "[]"]
    histories.append(json.dumps({"events": favourites, "exclude_history": False}))  # a request may opt out
    with RecommendClient(server.grpc_url, config.export.model_name) as client:
        served = client.recommend_results(histories)
    for want, got in zip(local.recommend_results(histories), served):
        assert got.ok, got.error
        assert not ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None], got.scores[None], 1e-4)
        assert len(got.items()) == 50
    for history, got in zip(histories[:4], served):
        assert not set(json.loads(history)) & {item for item, _ in got.items()}
    assert not set(favourites) & {item for item, _ in served[0].items()}  # the model's favourites were all excluded
