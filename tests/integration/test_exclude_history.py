"""`--exclude-history`: items already in the user's history never come back."""

import json

import numpy as np
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


def test_history_items_are_dropped_and_match_the_local_pipeline(excluding):
    config, result, server = excluding
    local = LocalPipeline(result.model, result.catalog.index(), config.packing, exclude_history=True)
    plain = LocalPipeline(result.model, result.catalog.index(), config.packing)
    empty = plain.recommend(["[]"])[0]
    # A history made of the cold-start favourites: most of them must disappear from the answer.
    favourites = [item for item, _ in empty.items()[:20]]
    histories = [history_json(favourites), history_json(favourites[:3] + [999_999]), "[]"]
    with RecommendClient(server.grpc_url, config.export.model_name) as client:
        served = client.recommend(histories)
    for history, want, got in zip(histories, local.recommend(histories), served):
        assert got.ok, got.error
        seen = set(json.loads(history))
        items = [i for i, _ in got.items()]
        assert not seen & set(items)
        assert not ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None], got.scores[None], 1e-4)
    assert len(served[0].items()) < 50 and served[0].item_ids[-1] == -1 and np.isneginf(served[0].scores[-1])
    assert len(served[2].items()) == 50
