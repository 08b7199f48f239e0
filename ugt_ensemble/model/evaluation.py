"""Leave-last-out evaluation of a next-item recommender, in numpy: each user's last event is held out, the
model ranks items from the events before it, and recall@k / NDCG@k are compared with a popularity baseline
(the items most often in the training events, the same list for every user).

With one held-out item per user, recall@k is the share of users whose item is in their top k, and NDCG@k
averages 1 / log2(rank + 1) over users (rank from 1; 0 when the item is not in the top k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ugt_ensemble.runtime.history import History


@dataclass(frozen=True)
class LeaveLastOut:
    """Training examples (each prefix of a user's events, all but the last, predicts the next item) and
    test examples (each user's events before the last, and the last item), histories cut to `max_length`."""

    train_histories: list[History]
    train_targets: np.ndarray
    test_histories: list[History]
    test_targets: np.ndarray


@dataclass(frozen=True)
class Ranking:
    """recall@k and NDCG@k of one ranking over the held-out items."""

    name: str
    k: int
    recall: float
    ndcg: float
    users: int

    def describe(self) -> str:
        return f"{self.name}: recall@{self.k} {self.recall:.4f}, NDCG@{self.k} {self.ndcg:.4f} ({self.users} users)"


def leave_last_out(histories: list[History], max_length: int) -> LeaveLastOut:
    """Split users' histories (at least 2 events each) into training prefixes and held-out last events."""
    train_h, train_t, test_h, test_t = [], [], [], []
    for history in histories:
        items, types = history.item_ids, history.token_types
        for t in range(1, len(items) - 1):
            start = max(0, t - max_length)
            train_h.append(History(items[start:t], types[start:t]))
            train_t.append(items[t])
        start = max(0, len(items) - 1 - max_length)
        test_h.append(History(items[start:-1], types[start:-1]))
        test_t.append(items[-1])
    return LeaveLastOut(train_h, np.array(train_t, dtype=np.int64), test_h, np.array(test_t, dtype=np.int64))


def hit_ranks(ranked: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Rank (from 1) of each target in its row of `ranked` (N, >=k) item ids, 0 if not in the first k."""
    top = np.asarray(ranked)[:, :k]
    hits = top == np.asarray(targets)[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)


def recall_at_k(ranked: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Share of rows whose target is among the first k items of its ranking."""
    return float(np.mean(hit_ranks(ranked, targets, k) > 0)) if len(targets) else 0.0


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Mean 1 / log2(rank + 1) of each row's target in its first k items (0 if absent); one relevant item per
    row, so the ideal DCG is 1."""
    ranks = hit_ranks(ranked, targets, k)
    gains = np.where(ranks > 0, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)
    return float(gains.mean()) if len(targets) else 0.0


def popularity_ranking(train_items: np.ndarray, k: int) -> np.ndarray:
    """The k items most frequent in `train_items`, most frequent first (ties: smaller item id first)."""
    items, counts = np.unique(np.asarray(train_items, dtype=np.int64), return_counts=True)
    order = np.lexsort((items, -counts))
    return items[order[:k]]


def evaluate(name: str, ranked: np.ndarray, targets: np.ndarray, k: int = 10) -> Ranking:
    """The `Ranking` of (N, >=k) ranked item ids against N held-out targets."""
    return Ranking(name, k, recall_at_k(ranked, targets, k), ndcg_at_k(ranked, targets, k), len(targets))


def evaluate_popularity(split: LeaveLastOut, histories: list[History], k: int = 10) -> Ranking:
    """The popularity baseline: items ranked by their count in the training events (every event of every user
    but the held-out last), the same list for each test user."""
    train_items = np.concatenate([h.item_ids[:-1] for h in histories]) if histories else np.zeros(0, np.int64)
    top = popularity_ranking(train_items, k)
    return evaluate("popularity", np.broadcast_to(top, (len(split.test_targets), len(top))), split.test_targets, k)
