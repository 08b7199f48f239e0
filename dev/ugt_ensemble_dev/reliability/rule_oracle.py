"""`RuleOracle`: what a served repository allows in the object form of HISTORY, and whether an answer obeys it.

Read from the repository's files (not from the server): the catalog's item ids, its named item sets (the
constraint-data folder preprocess serves), the default of `exclude_history`, whether the model step honours
rules, and K. The verdicts follow README ("Business rules"), computed here with plain numpy: an answer holds
distinct items, padding only at its end, every item in the catalog, in every named set, never excluded nor
(with exclude-history) sent in the history, and min(K, eligible) items when the model honours rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ugt_ensemble.repository.inspect import latest_version
from ugt_ensemble.repository.manifest import model_names, read_manifest
from ugt_ensemble.repository.rules import read_config, string_parameters
from ugt_ensemble.runtime.constraint_data import MAX_INTERSECTION_REMOVALS, ConstraintData
from ugt_ensemble.runtime.parameters import PostprocessParameters, PreprocessParameters


@dataclass(frozen=True)
class RuleExpectation:
    """What one valid document asks for: the raw item ids of its events, and its rules as sent
    (`exclude_history` None: the repository's default)."""

    history: tuple[int, ...] = ()
    exclude_history: bool | None = None
    exclude: tuple[int, ...] = ()
    sets: tuple[str, ...] = ()


class RuleOracle:
    """The served catalog and rules of one repository (see the module docstring)."""

    def __init__(
        self,
        item_ids: Sequence[int] | np.ndarray,
        sets: Mapping[str, np.ndarray],
        default_exclude_history: bool = False,
        rules_in_search: bool = True,
        k: int = 50,
        max_rule_list: int = 0,
    ) -> None:
        ids = np.asarray(item_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[order]
        self.sets = {name: np.asarray(mask, dtype=bool)[order] for name, mask in sets.items()}
        self.default_exclude_history = default_exclude_history
        self.rules_in_search = rules_in_search
        self.k = k
        self.max_rule_list = max_rule_list
        self._counts: dict[RuleExpectation, int] = {}

    @classmethod
    def from_repository(cls, repository: str | Path) -> RuleOracle:
        """The oracle of a repository written by `build` (its newest preprocess version's catalog folder)."""
        root = Path(repository)
        names = model_names(read_manifest(root))
        pre = PreprocessParameters.from_config(_parameters(root, names.preprocess))
        post = PostprocessParameters.from_config(_parameters(root, names.postprocess))
        folder = root / names.preprocess / str(latest_version(root / names.preprocess)) / pre.catalog_file
        data = ConstraintData.load(folder)
        bound = int(getattr(pre, "max_rule_list", 0))  # a TensorRT step's bound on the items one request removes
        sets = data.named_sets()
        return cls(data.index.item_ids, sets, pre.exclude_history, pre.rules_in_search, post.num_recommendations, bound)

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(self.sets)

    @property
    def item_ids(self) -> np.ndarray:
        return self.sorted_ids

    def members(self, name: str) -> np.ndarray:
        """The item ids of a named set (sorted)."""
        return self.sorted_ids[self.sets[name]]

    def uses_rules(self, expectation: RuleExpectation) -> bool:
        return bool(self.excludes_history(expectation) or expectation.exclude or expectation.sets)

    def excludes_history(self, expectation: RuleExpectation) -> bool:
        flag = expectation.exclude_history
        return self.default_exclude_history if flag is None else flag

    def intersection_refused(self, names: Sequence[str]) -> bool:
        """Whether the named sets' intersection removes more than the server's bound from the smallest."""
        if len(names) < 2:
            return False
        masks = [self.sets[name] for name in names]
        smallest = min(masks, key=lambda mask: int(mask.sum()))
        kept = np.logical_and.reduce(masks)
        return int(smallest.sum() - kept.sum()) > MAX_INTERSECTION_REMOVALS

    def over_list_bound(self, expectation: RuleExpectation) -> bool:
        """Whether the document removes more items from its base set (the smallest named set, or the catalog)
        than the model step takes (`max_rule_list`; 0: no bound)."""
        if not self.max_rule_list or not self.uses_rules(expectation):
            return False
        masks = [self.sets[name] for name in expectation.sets]
        base = min(masks, key=lambda mask: int(mask.sum())) if masks else np.ones(len(self.sorted_ids), bool)
        gone = ~self._allowed(expectation.sets)
        positions, found = self._positions(self._removed_ids(expectation))
        gone[positions[found]] = True
        return int((base & gone).sum()) > self.max_rule_list

    def eligible_count(self, expectation: RuleExpectation) -> int:
        """How many catalog items the document's rules leave (cached per expectation)."""
        count = self._counts.get(expectation)
        if count is None:
            mask = self._allowed(expectation.sets)
            positions, found = self._positions(self._removed_ids(expectation))
            removed = np.unique(positions[found])
            count = int(mask.sum() - mask[removed].sum())
            self._counts[expectation] = count
        return count

    def problem(self, expectation: RuleExpectation, item_ids: np.ndarray) -> str | None:
        """What is wrong with an answer (ITEM_IDS of one row) to the document, or None if it obeys the rules."""
        row = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        real = row[row >= 0]
        if len(row) != self.k or np.any(row[: len(real)] < 0) or np.any(row[len(real) :] != -1):
            return f"padding is not -1 at the end of {len(row)} slots: {row.tolist()}"
        if len(set(real.tolist())) != len(real):
            return f"repeated items: {real.tolist()}"
        positions, found = self._positions(real)
        if not found.all():
            return f"items outside the catalog: {real[~found].tolist()}"
        outside = real[~self._allowed(expectation.sets)[positions]]
        if len(outside):
            return f"items outside the sets {list(expectation.sets)}: {outside.tolist()}"
        removed = real[np.isin(real, self._removed_ids(expectation))]
        if len(removed):
            return f"excluded or history items returned: {removed.tolist()}"
        wanted = min(self.k, self.eligible_count(expectation))
        if self.rules_in_search and len(real) != wanted:
            return f"{len(real)} items, expected min({self.k}, {self.eligible_count(expectation)} eligible) = {wanted}"
        return None

    def _allowed(self, names: Sequence[str]) -> np.ndarray:
        return np.logical_and.reduce([self.sets[n] for n in names]) if names else np.ones(len(self.sorted_ids), bool)

    def _removed_ids(self, expectation: RuleExpectation) -> np.ndarray:
        ids = list(expectation.exclude) + (list(expectation.history) if self.excludes_history(expectation) else [])
        return np.asarray(ids, dtype=np.int64)

    def _positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `sorted_ids`, whether each id is a catalog item)."""
        positions = np.searchsorted(self.sorted_ids, ids).clip(0, max(len(self.sorted_ids) - 1, 0))
        return positions, self.sorted_ids[positions] == ids if len(self.sorted_ids) else np.zeros(len(ids), bool)


def _parameters(root: Path, model: str) -> dict[str, str]:
    return string_parameters(read_config(root / model / "config.pbtxt"))
