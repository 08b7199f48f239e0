"""The served ensemble answers raw histories exactly like the in-process PyTorch pipeline."""

import json

import numpy as np
import tritonclient.grpc as grpcclient

from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json, random_history

ATOL = 1e-4


def _assert_same(local_result, served_result):
    assert served_result.ok, served_result.error
    problems = ranked_mismatches(
        local_result.item_ids[None],
        local_result.scores[None],
        served_result.item_ids[None],
        served_result.scores[None],
        ATOL,
    )
    assert not problems, problems


def test_served_items_and_scores_equal_the_in_process_pipeline(built, client, local):
    _, result = built
    rng = np.random.default_rng(5)
    ids = result.catalog.item_ids
    histories = [history_json(random_history(ids, n, rng)) for n in (0, 1, 2, 7, 64, 100, 513, 1024, 1500)]
    histories.append(json.dumps([int(ids[0]), -42, 10**12, {"item_id": int(ids[1]), "type": "purchase"}]))
    served = client.recommend_results(histories, concurrency=8)
    expected = local.recommend_results(histories)
    known = set(ids.tolist())
    for want, got in zip(expected, served):
        _assert_same(want, got)
        items = [i for i, _ in got.items()]
        assert len(items) == 50 == len(set(items)) and set(items) <= known
        assert np.all(np.diff(got.scores) <= 0)
        assert got.semantic_ids.shape == (50, 3)


MALFORMED = {
    b"\xc3\x28": "not valid UTF-8",
    b"[1, 2": "not valid JSON",
    b'{"item_id": 5}': 'unknown key(s) "item_id"',
    b'[1, "2"]': "event 1: expected an item id",
    b'[{"item_id": 1, "type": "wishlist"}]': 'unknown event type "wishlist"',
    b'[{"type": "view"}]': 'missing "item_id"',
    b"[" + b"1," * 200_000 + b"1]": "the limit is",
    b"[1.5, 2]": "event 0",
}


def test_good_and_malformed_requests_in_the_same_batches(built, server, client, local):
    _, result = built
    rng = np.random.default_rng(9)
    good = [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(1, 300, 24)]
    bad = list(MALFORMED)
    payloads = [p for pair in zip(good, bad * 3) for p in pair]
    pre_before, post_before = _stats(server, "preprocess"), _stats(server, "postprocess")
    served = client.recommend_results(payloads, concurrency=32)
    expected = dict(zip(good, local.recommend_results(good)))
    for payload, got in zip(payloads, served):
        if payload in MALFORMED:
            assert not got.ok and MALFORMED[payload] in got.error, (payload[:40], got)
        else:
            _assert_same(expected[payload], got)
    executions, inferences = (a - b for a, b in zip(_stats(server, "preprocess"), pre_before))
    assert inferences == executions == len(payloads)  # preprocess: one request per execute (isolation)
    executions, inferences = (a - b for a, b in zip(_stats(server, "postprocess"), post_before))
    assert inferences == len(good) and executions < inferences  # the good ones really were batched together


def _stats(server, model: str) -> tuple[int, int]:
    with grpcclient.InferenceServerClient(server.grpc_url) as c:
        stats = c.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("execution_count", 0)), int(stats.get("inference_count", 0))


def test_a_request_may_carry_several_histories(server):
    rows = np.array([[b"[1, 2, 3]"], [b"[]"], [b"[4]"]], dtype=object)
    with grpcclient.InferenceServerClient(server.grpc_url) as c:
        tensor = grpcclient.InferInput("HISTORY", [3, 1], "BYTES")
        tensor.set_data_from_numpy(rows)
        answer = c.infer("ugt_recommend", [tensor])
        assert answer.as_numpy("ITEM_IDS").shape == (3, 50)
        assert answer.as_numpy("SEMANTIC_IDS").shape == (3, 50, 3)
        tensor.set_data_from_numpy(np.array([[b"[1]"], [b"[true]"], [b"[]"]], dtype=object))
        try:
            c.infer("ugt_recommend", [tensor])
        except Exception as exc:  # noqa: BLE001
            assert "row 1: event 0" in str(exc)
        else:
            raise AssertionError("a request with a malformed row must fail")


def test_the_model_step_alone_takes_packed_tensors_and_checks_them(built, server, local):
    config, result = built
    histories = [history_json(list(range(1, 40)))]
    packed = local.pack(histories)
    with grpcclient.InferenceServerClient(server.grpc_url) as c:
        inputs = []
        for name, array in packed.items():
            tensor = grpcclient.InferInput(name, list(array.shape), "FP32" if array.dtype == np.float32 else "INT64")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        answer = c.infer(config.triton.step_name, inputs)
        codes, scores = answer.as_numpy("recommendations"), answer.as_numpy("scores")
        assert codes.shape == (1, 50, 3)
        want = local.recommend(histories)[0]
        assert not ranked_mismatches(want.semantic_ids[None], want.scores[None], codes, scores, ATOL)
        packed["encoder_l1_ids"][0, 0] = 5000
        inputs[0].set_data_from_numpy(packed["encoder_l1_ids"])
        try:
            c.infer(config.triton.step_name, inputs)
        except Exception as exc:  # noqa: BLE001
            assert "encoder_l1_ids has values outside [0, 1024)" in str(exc)
        else:
            raise AssertionError("out-of-range codes must be refused")
