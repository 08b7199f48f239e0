"""Fuzzed requests through the real server: good ones answered as when sent alone, bad ones refused, nothing dies."""

from ugt_ensemble_dev.reliability.fuzz_requests import GOOD_OUTCOMES
from ugt_ensemble_dev.reliability.fuzz_server import fuzz_server

#: CI-sized; `python -m ugt_ensemble_dev.reliability.fuzz_server --requests 10000` is the full run.
REQUESTS = 400


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
    )
    assert outcome.requests == REQUESTS and sum(outcome.outcomes.values()) == REQUESTS
    assert outcome.wrong_answers == [], outcome.summary()
    assert outcome.unexpected == [] and set(outcome.outcomes) <= set(GOOD_OUTCOMES), outcome.summary()
    refused = outcome.outcomes.get("refused", 0) + outcome.outcomes.get("refused-batch-size", 0)
    assert refused > REQUESTS // 4 and outcome.outcomes.get("refused-batch-size", 0) > 0, outcome.summary()
    assert outcome.histories > 2 * REQUESTS  # many requests carry several histories (up to and past 64)
    assert outcome.server_alive and outcome.stubs_alive and len(outcome.stubs_after) >= 3, outcome.summary()
