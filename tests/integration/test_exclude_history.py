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
    favourites = [item for item, _ in empty.items()[:20]]
    # A third of the catalog: the model's 50 candidates all miss it only with odds of about 2e-9.
    third = result.catalog.item_ids[: len(result.catalog.item_ids) // 3].tolist()[-1024:]
    histories = [history_json(favourites), history_json(favourites[:3] + [999_999]), history_json(third), "[]"]
    with RecommendClient(server.grpc_url, config.export.model_name) as client:
        served = client.recommend(histories)
    shortened = 0
    for history, want, unfiltered, got in zip(
        histories, local.recommend(histories), plain.recommend(histories), served
    ):
        assert got.ok, got.error
        seen = set(json.loads(history))
        items = [i for i, _ in got.items()]
        assert not seen & set(items)
        assert not ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None], got.scores[None], 1e-4)
        # Exactly the model's own answer without the history's items, the rest padding.
        assert items == [i for i, _ in unfiltered.items() if i not in seen]
        if len(items) < 50:
            shortened += 1
            assert (got.item_ids[len(items) :] == -1).all() and np.isneginf(got.scores[len(items) :]).all()
    assert shortened > 0  # some history held items the model would have recommended again
    assert len(served[-1].items()) == 50
