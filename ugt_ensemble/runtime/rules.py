"""Pack the business rules of a batch of requests into the model step's `contract.RULE_INPUTS` tensors,
and check a model's answers against them when the model does not honour the rules in its search.

For a row r, the eligible items are base(r) minus R_r: base(r) is the smallest set the request names (the
whole catalog when it names none) and R_r holds the base items of the sent history (with exclude-history),
of the request's exclusions, and those missing from another named set. Ids outside the catalog are ignored.
- rule_set [B, 1]: base(r);
- rule_l1_valid [B, V1]: level-1 codes with an eligible item below;
- rule_dead_pairs [B, E2, 2]: (l1, child slot) of the pairs that hold base items but no eligible one;
- rule_removed_items [B, E3, 2]: (pair index, child slot) of every item of R_r.
Lists are padded with (-1, 0) to the batch's longest, and are at least one entry wide.
"""

from __future__ import annotations

import weakref
from typing import Mapping, Sequence

import numpy as np

from .constraint_data import ConstraintData
from .constraint_tables import ITEM_PAIR, L2_OFFSET, L3_OFFSET, PAIR_L1, SET_ITEMS, SET_L1_PAIRS, SET_PAIR_COUNTS
from .contract import RULE_DEAD_PAIRS, RULE_L1_VALID, RULE_PADDING, RULE_REMOVED_ITEMS, RULE_SET
from .errors import RequestError
from .rule_request import RuleRequest

Tensors = dict[str, np.ndarray]
_DEFAULTS: weakref.WeakKeyDictionary[ConstraintData, Tensors] = weakref.WeakKeyDictionary()


def pack_rules(
    rules: Sequence[RuleRequest],
    history_item_ids: Sequence[np.ndarray],
    data: ConstraintData,
    default_exclude_history: bool,
) -> Tensors:
    """The four rule tensors of a batch: row r follows `rules[r]` with the raw item ids the client sent
    as its history (`history_item_ids[r]`). Raises `RequestError` for a rule `data.check_request` refuses."""
    if len(rules) != len(history_item_ids):
        raise ValueError(f"{len(rules)} rules for {len(history_item_ids)} histories")
    if not any(rule.uses_rules(default_exclude_history) for rule in rules):
        return default_rules(data, len(rules))
    bases, rows, items = _removed_items(rules, history_item_ids, data, default_exclude_history)
    arrays = data.arrays
    pairs = arrays[ITEM_PAIR][items]
    dead_rows, dead_pairs = _dead_pairs(bases, rows, pairs, data)
    dead_l1 = arrays[PAIR_L1][dead_pairs]
    batch, v1 = len(rules), data.index.codebook_sizes[0]
    live = arrays[SET_L1_PAIRS][bases].astype(np.int64)
    live -= np.bincount(dead_rows * v1 + dead_l1, minlength=batch * v1).reshape(batch, v1)
    return {
        RULE_SET: bases[:, None],
        RULE_L1_VALID: live > 0,
        RULE_DEAD_PAIRS: _padded_lists(dead_rows, dead_l1, dead_pairs - arrays[L2_OFFSET][dead_l1], batch),
        RULE_REMOVED_ITEMS: _padded_lists(rows, pairs, items - arrays[L3_OFFSET][pairs], batch),
    }


def check_list_length(
    rule: RuleRequest, history_item_ids: np.ndarray, data: ConstraintData, default_exclude_history: bool, bound: int
) -> None:
    """`RequestError` when one request's rule lists would hold more than `bound` entries: the items it removes
    (its exclusions, its history with exclude-history, the items of its base set missing from another named set;
    its dead pairs are never more). A TensorRT model step's profile has such a bound (`ExportConfig.max_rule_list`)."""
    if not rule.uses_rules(default_exclude_history):
        return
    removed = len(_removed_items([rule], [history_item_ids], data, default_exclude_history)[1])
    if removed > bound:
        raise RequestError(
            f"rules: the request removes {removed} catalog items (exclude, the history with exclude_history, items "
            f"missing from another named set); this repository's TensorRT model step takes at most {bound}: exclude "
            "fewer items or send a shorter history"
        )


def default_rules(data: ConstraintData, batch: int) -> Tensors:
    """The rule tensors of `batch` rows without rules (read-only views of arrays cached per `data`)."""
    cached = _DEFAULTS.get(data)
    if cached is None or len(cached[RULE_SET]) < batch:
        size = max(batch, 64, 2 * len(cached[RULE_SET]) if cached else 0)
        cached = no_rule_tensors(data.arrays[SET_L1_PAIRS][0] > 0, size)
        for value in cached.values():
            value.flags.writeable = False
        _DEFAULTS[data] = cached
    return {name: value[:batch] for name, value in cached.items()}


def no_rule_tensors(l1_valid: np.ndarray, batch: int) -> Tensors:
    """The rule tensors of `batch` rows without a rule: the whole catalog (set 0), the level-1 codes `l1_valid`
    (those with a catalog item), and one padding entry in each list."""
    padding = np.zeros((batch, 1, 2), dtype=np.int64)
    padding[..., 0] = RULE_PADDING
    return {
        RULE_SET: np.zeros((batch, 1), dtype=np.int64),
        RULE_L1_VALID: np.repeat(np.asarray(l1_valid, dtype=bool)[None], batch, axis=0),
        RULE_DEAD_PAIRS: padding,
        RULE_REMOVED_ITEMS: padding.copy(),
    }


def eligible_mask(items: np.ndarray, rule_tensors: Mapping[str, np.ndarray], data: ConstraintData) -> np.ndarray:
    """bool (n, R): whether each returned item is eligible for its row under the packed rules.

    `items` is either item indices (n, R) in code order (-1 for none) or code triples (n, R, 3) (triples
    that are no catalog item are not eligible); `rule_tensors` are `pack_rules`' tensors for the n rows.
    """
    items = np.asarray(items, dtype=np.int64)
    if items.ndim == 3:
        items = data.index.item_index_of(items)
    n, num_items = len(items), data.num_items
    removed = np.asarray(rule_tensors[RULE_REMOVED_ITEMS], dtype=np.int64)
    if not rule_tensors[RULE_SET].any() and (removed[..., 0] < 0).all():  # no row has a rule: any catalog item
        return (items >= 0) & (items < num_items)
    valid = (items >= 0) & (items < num_items)
    safe = np.where(valid, items, 0)
    rows = np.arange(n, dtype=np.int64)[:, None]
    set_items = data.arrays[SET_ITEMS]
    sets = np.asarray(rule_tensors[RULE_SET], dtype=np.int64).reshape(n, 1)
    in_base = set_items.reshape(-1)[sets * set_items.shape[1] + safe]
    real = removed[..., 0] >= 0
    removed_items = data.arrays[L3_OFFSET][removed[..., 0][real]] + removed[..., 1][real]
    removed_keys = np.broadcast_to(rows, real.shape)[real] * num_items + removed_items
    return valid & in_base & ~np.isin(rows * num_items + safe, removed_keys)


def _removed_items(
    rules: Sequence[RuleRequest], histories: Sequence[np.ndarray], data: ConstraintData, default_history: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base set per row [B], rows [M], item indices [M]) of every removed item, sorted by (row, item)."""
    bases = np.zeros(len(rules), dtype=np.int64)
    ids, id_counts, extras, extra_counts = [], [], [], []
    for row, (rule, history) in enumerate(zip(rules, histories)):
        row_ids = [np.asarray(rule.exclude, dtype=np.int64).ravel()]
        if default_history if rule.exclude_history is None else rule.exclude_history:
            row_ids.append(np.asarray(history, dtype=np.int64).ravel())
        bases[row], extra = data.resolve(rule)
        ids += row_ids
        id_counts.append(sum(len(part) for part in row_ids))
        extras.append(extra)
        extra_counts.append(len(extra))
    batch_rows = np.arange(len(rules), dtype=np.int64)
    pos, found = data.index.positions_of(np.concatenate(ids))
    items = np.asarray(data.index.code_order)[pos[found]]
    rows = np.repeat(batch_rows, id_counts)[found]
    set_items = data.arrays[SET_ITEMS]
    in_base = set_items.reshape(-1)[bases[rows] * set_items.shape[1] + items]
    num_items = data.num_items
    keys = np.concatenate(
        [
            rows[in_base] * num_items + items[in_base],
            np.repeat(batch_rows, extra_counts) * num_items + np.concatenate(extras),
        ]
    )
    keys = np.unique(keys)
    return bases, keys // num_items, keys % num_items


def _dead_pairs(
    bases: np.ndarray, rows: np.ndarray, pairs: np.ndarray, data: ConstraintData
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, pair indices) of the pairs all of whose base items are removed (`rows`/`pairs` sorted by row, pair)."""
    num_pairs = data.num_pairs
    keys = rows * num_pairs + pairs
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=np.int64)
    counts = np.diff(np.r_[starts, len(keys)])
    pair_rows, pair_ids = rows[starts], pairs[starts]
    in_base = data.arrays[SET_PAIR_COUNTS].reshape(-1)[bases[pair_rows] * num_pairs + pair_ids]
    dead = counts == in_base
    return pair_rows[dead], pair_ids[dead]


def _padded_lists(rows: np.ndarray, parents: np.ndarray, slots: np.ndarray, batch: int) -> np.ndarray:
    """[batch, width >= 1, 2] int64: row r's (parent, slot) entries in order, padded with (-1, 0)."""
    counts = np.bincount(rows, minlength=batch)
    out = np.zeros((batch, max(1, int(counts.max(initial=0))), 2), dtype=np.int64)
    out[..., 0] = RULE_PADDING
    starts = np.zeros(batch, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    rank = np.arange(len(rows), dtype=np.int64) - starts[rows]
    out[rows, rank, 0] = parents
    out[rows, rank, 1] = slots
    return out
