import numpy as np
import pytest

from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.decoding import decode_recommendations

CODES = np.array([[1, 2, 3], [1, 2, 4], [5, 6, 7], [8, 9, 10]])
ITEMS = np.array([100, 101, 102, 103])


def _index():
    return CatalogIndex(ITEMS, CODES)


def test_codes_map_to_items_and_unknown_codes_become_padding():
    codes = np.array([[[5, 6, 7], [9, 9, 9], [1, 2, 3], [-1, -1, -1]]])
    scores = np.array([[-1.0, -2.0, -3.0, -np.inf]], dtype=np.float32)
    out = decode_recommendations(codes, scores, _index())
    assert out.item_ids.tolist() == [[102, 100, -1, -1]]
    assert out.scores[0, :2].tolist() == [-1.0, -3.0]
    assert np.isneginf(out.scores[0, 2:]).all()
    assert out.semantic_ids[0].tolist() == [[5, 6, 7], [1, 2, 3], [-1, -1, -1], [-1, -1, -1]]


def test_ineligible_slots_are_dropped_per_row():
    codes = np.array([[[1, 2, 3], [1, 2, 4], [5, 6, 7]], [[1, 2, 3], [1, 2, 4], [5, 6, 7]]])
    scores = np.array([[-1.0, -2.0, -3.0]] * 2, dtype=np.float32)
    eligible = np.array([[True, False, True], [True, True, False]])
    out = decode_recommendations(codes, scores, _index(), eligible)
    assert out.item_ids.tolist() == [[100, 102, -1], [100, 101, -1]]
    assert np.all(np.diff(out.scores[:, :2], axis=1) <= 0)
    assert out.rows(1, 2)["ITEM_IDS"].shape == (1, 3)


def test_repeated_items_keep_their_best_score_and_the_answer_is_sorted():
    """A model that is not catalog-constrained may return an item twice, unknown codes, and any order."""
    index = CatalogIndex(np.array([10, 20, 30]), np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]]))
    codes = np.array([[[0, 0, 1], [0, 0, 0], [0, 0, 1], [5, 5, 5], [0, 1, 0]]])
    scores = np.array([[-1.0, -0.5, -0.2, -0.1, -3.0]], dtype=np.float32)
    decoded = decode_recommendations(codes, scores, index)
    assert decoded.item_ids.tolist() == [[20, 10, 30, -1, -1]]
    assert decoded.scores.tolist()[0][:3] == pytest.approx([-0.2, -0.5, -3.0])
    assert np.isneginf(decoded.scores[0, 3:]).all()
    assert decoded.semantic_ids.tolist()[0][:3] == [[0, 0, 1], [0, 0, 0], [0, 1, 0]]
