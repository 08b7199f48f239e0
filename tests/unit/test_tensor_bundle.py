"""The bundle preprocess sends a Python-backend model step: the same arrays come out, and a malformed bundle sent
straight to the step is refused by name (never read past its bytes)."""

import numpy as np
import pytest

from ugt_ensemble.runtime.contract import ENCODER_DTYPES, ENCODER_INPUTS, RULE_DTYPES, RULE_NAMES
from ugt_ensemble.runtime.errors import RequestError
from ugt_ensemble.runtime.tensor_bundle import (
    BUNDLE,
    bundle_rows,
    bundle_step_inputs,
    header_bytes,
    step_inputs,
    unbundle_rows,
)

DTYPES = {**ENCODER_DTYPES, **{name: RULE_DTYPES[name] for name in RULE_NAMES}}


def _arrays(rows: int = 3, width: int = 37, removed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rows * 100 + width)
    arrays = {name: rng.integers(0, 9, (rows, width)).astype(dtype) for name, dtype in ENCODER_DTYPES.items()}
    arrays["rule_set"] = rng.integers(0, 3, (rows, 1))
    arrays["rule_l1_valid"] = rng.random((rows, 1024)) > 0.5
    arrays["rule_dead_pairs"] = rng.integers(0, 9, (rows, 0, 2))
    arrays["rule_removed_items"] = rng.integers(0, 9, (rows, removed, 2))
    return arrays


@pytest.mark.parametrize(("rows", "width", "removed"), [(1, 1, 0), (3, 37, 5), (64, 1024, 1000)])
def test_every_array_comes_back_with_its_dtype_and_shape(rows, width, removed):
    arrays = _arrays(rows, width, removed)
    bundle = bundle_step_inputs(arrays, with_rules=True)[BUNDLE]
    assert bundle.dtype == np.uint8 and bundle.shape[0] == rows and bundle.shape[1] % 8 == 0
    back = step_inputs({BUNDLE: bundle}, with_rules=True)
    assert list(back) == list(DTYPES)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name
        assert back[name].flags.c_contiguous  # ready for ONNX Runtime
    encoder = {name: arrays[name] for name in ENCODER_INPUTS}
    assert list(step_inputs(bundle_step_inputs(encoder, with_rules=False), with_rules=False)) == list(ENCODER_INPUTS)


def test_tensors_sent_one_by_one_pass_through():
    arrays = _arrays()
    assert step_inputs(arrays, with_rules=True) is arrays


def _bundle() -> np.ndarray:
    return bundle_rows([_arrays()[name] for name in DTYPES])


def _with_word(bundle: np.ndarray, word: int, value: int) -> np.ndarray:
    broken = bundle.copy()
    broken[:, 8 * word : 8 * word + 8] = np.frombuffer(np.int64(value).tobytes(), dtype=np.uint8)
    return broken


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda b: b.view(np.int8), "expected a uint8 [rows, bytes] tensor"),
        (lambda b: b[0], "expected a uint8 [rows, bytes] tensor"),
        (lambda b: b[:, :40], "shorter than the header of 10 arrays"),
        (lambda b: _with_word(b, 0, 2), "expected version 1 with 10 arrays"),
        (lambda b: _with_word(b, 1, 6), "expected version 1 with 10 arrays"),
        (lambda b: _with_word(b, 2, 2), "encoder_l1_ids is declared as code 2"),  # float32 where int64 is due
        (lambda b: _with_word(b, 4, -1), "encoder_l1_ids is declared as code 1 with dims [-1]"),
        (lambda b: _with_word(b, 4, 1 << 40), "runs past the row's"),
        (lambda b: b[:, :-8], "runs past the row's"),
        (lambda b: np.concatenate([b, np.zeros((3, 8), np.uint8)], axis=1), "8 bytes a row past its last array"),
        (lambda b: np.concatenate([b[:2], _with_word(b, 4, 36)[2:]]), "the rows' headers differ"),
    ],
)
def test_a_malformed_bundle_is_refused_by_name(make, message):
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        unbundle_rows(make(_bundle()), DTYPES)


def test_the_bundle_and_the_tensors_at_once_are_refused():
    with pytest.raises(RequestError, match="send ugt_bundle alone or the step's tensors, not both"):
        step_inputs({BUNDLE: _bundle(), "encoder_mask": np.zeros((3, 37), np.float32)}, with_rules=True)


def test_the_header_size_is_what_a_row_starts_with():
    assert header_bytes(10) == 8 * (2 + 4 * 10)
    bundle = _bundle()
    assert bundle[0, : header_bytes(10)].view(np.int64)[:2].tolist() == [1, 10]
    with pytest.raises(ValueError, match="cannot bundle a float64"):
        bundle_rows([np.zeros((2, 3))])
