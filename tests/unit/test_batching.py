import numpy as np
import pytest

from ugt_ensemble.runtime.batching import answer_batch, row_bounds
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.model_step import EncoderLimits, check_encoder_inputs, run_by_length


def _parse(value):
    if value == "bad":
        raise RequestError("bad request")
    if value == "crash":
        raise KeyError("boom")
    return value


def test_each_request_gets_its_own_outcome():
    outcomes = answer_batch(["a", "bad", "b", "crash"], _parse, lambda xs: [{"x": np.array(x)} for x in xs])
    assert [o.error for o in outcomes] == [None, "bad request", None, "internal error: KeyError: 'boom'"]
    assert [o.code for o in outcomes if o.error] == ["INVALID_ARG", "INTERNAL"]  # client fault, server fault
    assert outcomes[2].outputs["x"].item() == "b"


def test_a_failing_batch_is_retried_one_by_one():
    calls = []

    def run(items):
        calls.append(list(items))
        if "poison" in items:
            raise RuntimeError("engine failed")
        return [{"y": np.array(1)} for _ in items]

    outcomes = answer_batch(["a", "poison", "b"], _parse, run)
    assert [o.error for o in outcomes] == [None, "internal error: RuntimeError: engine failed", None]
    assert calls == [["a", "poison", "b"], ["a"], ["poison"], ["b"]]


def test_wrong_result_count_is_an_error_not_a_crash():
    outcomes = answer_batch(["a"], _parse, lambda xs: [])
    assert "returned 0 results for 1" in outcomes[0].error


def _encoder(rows=1, length=4, **overrides):
    tensors = {
        name: np.zeros((rows, length), dtype=np.int64)
        for name in ("encoder_l1_ids", "encoder_l2_ids", "encoder_l3_ids", "encoder_positions", "encoder_token_types")
    }
    tensors["encoder_mask"] = np.ones((rows, length), dtype=np.float32)
    tensors.update(overrides)
    return tensors


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"encoder_l1_ids": np.full((1, 4), 1024)}, r"encoder_l1_ids has values outside \[0, 1024\)"),
        ({"encoder_l3_ids": np.full((1, 4), -1)}, "encoder_l3_ids has values outside"),
        ({"encoder_positions": np.full((1, 4), 9)}, r"encoder_positions has values outside \[0, 8\)"),
        ({"encoder_mask": np.ones((1, 3), dtype=np.float32)}, "must share one"),
        ({"encoder_mask": np.full((1, 4), np.nan, dtype=np.float32)}, "non-finite"),
    ],
)
def test_encoder_input_checks(overrides, message):
    with pytest.raises(RequestError, match=message):
        check_encoder_inputs(_encoder(**overrides), EncoderLimits(max_seq_length=8))


def test_too_long_histories_are_refused():
    with pytest.raises(RequestError, match="history length 9 is outside"):
        check_encoder_inputs(_encoder(length=9), EncoderLimits(max_seq_length=8))


def test_run_by_length_groups_equal_lengths_and_splits_back():
    requests = [_encoder(1, 4), _encoder(2, 8), _encoder(1, 4)]
    seen = []

    def run(feed):
        rows, length = feed["encoder_mask"].shape
        seen.append((rows, length))
        return [np.full((rows, 50, 3), length), np.arange(rows, dtype=np.float32)[:, None].repeat(50, 1)]

    results = run_by_length(requests, run)
    assert seen == [(2, 4), (2, 8)]
    assert [r["recommendations"].shape[0] for r in results] == [1, 2, 1]
    assert results[2]["recommendations"][0, 0, 0] == 4 and results[2]["scores"][0, 0] == 1.0


def test_run_by_length_slices_big_groups_to_bound_memory():
    requests = [_encoder(3, 8), _encoder(2, 8), _encoder(1, 2)]
    seen = []

    def run(feed):
        rows, length = feed["encoder_mask"].shape
        seen.append((rows, length))
        ids = feed["encoder_l1_ids"][:, :1, None].repeat(50, 1).repeat(3, 2)
        return [ids, np.zeros((rows, 50), dtype=np.float32)]

    for i, request in enumerate(requests):
        request["encoder_l1_ids"][:] = np.arange(len(request["encoder_l1_ids"]))[:, None] + 10 * i
    results = run_by_length(requests, run, max_tokens=16)  # 16 tokens: 2 rows of length 8 per call
    assert seen == [(1, 2), (2, 8), (2, 8), (1, 8)]
    assert results[0]["recommendations"][:, 0, 0].tolist() == [0, 1, 2]
    assert results[1]["recommendations"][:, 0, 0].tolist() == [10, 11]


def test_row_bounds_split_a_batch_by_request():
    assert row_bounds([2, 0, 3]) == [(0, 2), (2, 2), (2, 5)]
    assert row_bounds([]) == []


def test_error_messages_are_always_encodable_for_triton():
    """Triton's TritonError takes a C++ string: a client's lone surrogate must come back escaped."""
    from ugt_ensemble.runtime.errors import CLIENT_ERROR, describe_error
    from ugt_ensemble.runtime.history import HistoryError, parse_history

    try:
        parse_history(b'[{"item_id": 1, "type": "\\ud800"}]')
    except HistoryError as exc:
        message, code = describe_error(exc)
    assert code == CLIENT_ERROR and "\\ud800" in message
    message.encode("utf-8")  # does not raise


def test_an_escaped_error_message_stays_short():
    from ugt_ensemble.runtime.errors import describe_error
    from ugt_ensemble.runtime.history import HistoryError, parse_history

    try:
        parse_history(('[{"item_id": 1, "type": "' + "\\ud800" * 300 + '"}]').encode())
    except HistoryError as exc:
        message, _ = describe_error(exc)
    assert len(message) < 500 and "characters)" in message
