"""The Python client's error contract on a real tritonserver (README, "Python API"): `recommend_one` and
`recommend` return recommendations and raise `RecommendError` (the server's message, its status, the failed row,
every row's result) for a refused history; `recommend_results` returns a `Recommendation` or a `Failure` per row.
`LocalPipeline` keeps the same contract."""

import pytest

from ugt_ensemble.client import Failure, Recommendation, RecommendError

GOOD, BAD = "[1, 2, 3]", '[1, {"item_id": 2, "type": "like"}]'
INVALID = "StatusCode.INVALID_ARGUMENT"


def test_recommend_one_returns_an_answer_or_raises_the_servers_message(client):
    assert len(client.recommend_one(GOOD).items()) == 50
    with pytest.raises(RecommendError) as refused:
        client.recommend_one(BAD)
    error = refused.value
    assert (error.row, error.status) == (0, INVALID) and "event 1" in error.message and "like" in error.message
    assert str(error) == f"history 0: [{INVALID}] {error.message}"
    assert [type(r) for r in error.results] == [Failure]


def test_recommend_raises_for_the_first_refused_row_and_keeps_every_rows_result(client):
    assert [len(r.items()) for r in client.recommend([GOOD, "[]"])] == [50, 50]
    with pytest.raises(RecommendError) as refused:
        client.recommend([GOOD, BAD, GOOD, "not json"])
    error = refused.value
    assert error.row == 1 and error.status == INVALID and "(and 1 more failed histories)" in str(error)
    assert [r.ok for r in error.results] == [True, False, True, False]
    assert error.results[0].item_ids.tolist() == client.recommend_one(GOOD).item_ids.tolist()


def test_recommend_results_never_raises_for_a_refused_history(client):
    results = client.recommend_results([BAD, GOOD])
    assert isinstance(results[0], Failure) and (results[0].row, results[0].status) == (0, INVALID)
    assert isinstance(results[1], Recommendation) and results[1].ok and not results[0].ok


def test_the_local_pipeline_has_the_same_contract(local):
    with pytest.raises(RecommendError) as refused:
        local.recommend([GOOD, BAD])
    assert refused.value.row == 1 and refused.value.status is None and "event 1" in refused.value.message
    assert [r.ok for r in local.recommend_results([GOOD, BAD])] == [True, False]
