"""Leave-last-out evaluation: recall@k and NDCG@k on a case computed by hand, the popularity baseline, and the
split of users' histories into training prefixes and held-out last events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ugt_ensemble.model.evaluation import (
    evaluate_popularity,
    hit_ranks,
    leave_last_out,
    ndcg_at_k,
    popularity_ranking,
    recall_at_k,
)
from ugt_ensemble.runtime.history import History


def history(items: list[int], types: list[int] | None = None) -> History:
    return History(np.array(items, dtype=np.int64), np.array(types or [1] * len(items), dtype=np.int64))


def test_recall_and_ndcg_on_a_hand_computed_case():
    ranked = np.array([[5, 7, 9, -1], [1, 2, 3, 4], [8, 6, 4, 2], [3, 3, 3, 3]])
    targets = np.array([7, 4, 8, 9])  # rank 2, rank 4, rank 1, absent
    assert hit_ranks(ranked, targets, 4).tolist() == [2, 4, 1, 0]
    assert recall_at_k(ranked, targets, 4) == 0.75
    assert recall_at_k(ranked, targets, 3) == 0.5  # rank 4 falls outside the top 3
    # DCG of one relevant item at rank r is 1/log2(r+1): 1/log2(3) + 1/log2(5) + 1/log2(2) + 0, over 4 users
    assert ndcg_at_k(ranked, targets, 4) == pytest.approx((0.6309297536 + 0.4306765581 + 1.0) / 4)
    assert ndcg_at_k(ranked, targets, 1) == pytest.approx(0.25)
    assert ndcg_at_k(ranked, targets, 4) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5) + 1) / 4)


def test_popularity_ranks_by_count_then_item_id():
    assert popularity_ranking(np.array([4, 2, 2, 9, 4, 7, 2]), 3).tolist() == [2, 4, 7]


def test_leave_last_out_holds_out_each_users_last_event_and_keeps_types():
    users = [history([1, 2, 3, 4], [1, 2, 3, 4]), history([7, 8])]
    split = leave_last_out(users, max_length=2)
    assert [h.item_ids.tolist() for h in split.train_histories] == [[1], [1, 2]]
    assert split.train_targets.tolist() == [2, 3]
    assert [h.item_ids.tolist() for h in split.test_histories] == [[2, 3], [7]]  # cut to the last 2 events
    assert [h.token_types.tolist() for h in split.test_histories] == [[2, 3], [1]]
    assert split.test_targets.tolist() == [4, 8]


def test_the_popularity_baseline_never_counts_the_held_out_events():
    users = [history([1, 2, 9]), history([2, 3, 9]), history([3, 1])]  # 9 is popular only among held-out events
    split = leave_last_out(users, max_length=8)
    result = evaluate_popularity(split, users, k=2)  # training events: 1, 2, 2, 3, 3 -> top 2: [2, 3]
    assert result.users == 3 and result.recall == pytest.approx(0.0)
    assert evaluate_popularity(split, users, k=3).recall == pytest.approx(1 / 3)  # [2, 3, 1]: user 3's 1
