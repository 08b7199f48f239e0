"""How often a model step returns real catalog items: the catalog-validity probe of `build`.

Over sampled histories of the catalog, packed as preprocess packs them, it counts the returned (l1, l2, l3)
triples that are catalog items, the empty slots (code -1), and the rows that return an item twice.
Postprocess turns unknown codes into padding and drops repeats, so a low share means short answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ugt_ensemble.errors import ExportError
from ugt_ensemble.histories import LengthDistribution, random_history
from ugt_ensemble.model.contract import Runner
from ugt_ensemble.runtime.catalog_index import CatalogIndex
from ugt_ensemble.runtime.contract import PAD_ITEM_ID, TOKEN_TYPE_OF_EVENT
from ugt_ensemble.runtime.history import History
from ugt_ensemble.runtime.packing import PackingConfig, pack_histories

ROWS_PER_CALL = 16


@dataclass(frozen=True)
class CatalogValidity:
    """Shares over `histories` sampled histories and their `slots` returned slots."""

    histories: int
    slots: int
    valid_share: float  # of the non-empty slots, those holding a catalog item
    empty_share: float  # of all slots, those marked empty (code -1)
    rows_with_duplicates: float  # of the rows, those returning some catalog item twice

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.valid_share:.1%} of returned triples are catalog items ({self.empty_share:.1%} of slots empty), "
            f"{self.rows_with_duplicates:.1%} of rows repeat an item, over {self.histories} histories"
        )


def probe_catalog_validity(
    run: Runner, index: CatalogIndex, packing: PackingConfig, histories: int = 128, seed: int = 0
) -> CatalogValidity:
    """Run `run` on `histories` seeded histories (1 to max length events, log-uniform) and count."""
    sampled = sample_histories(index, packing, histories, np.random.default_rng(seed))
    valid = empty = slots = duplicates = 0
    for start in range(0, histories, ROWS_PER_CALL):
        rows = sampled[start : start + ROWS_PER_CALL]
        codes, _ = run(pack_histories(rows, index, packing).tensors)
        items = index.items_of(codes)
        is_empty = np.all(codes == PAD_ITEM_ID, axis=-1)
        slots += codes.shape[0] * codes.shape[1]
        empty += int(is_empty.sum())
        valid += int((items != PAD_ITEM_ID).sum())
        duplicates += sum(_repeats(row[row != PAD_ITEM_ID]) for row in items)
    returned = slots - empty
    return CatalogValidity(
        histories=histories,
        slots=slots,
        valid_share=valid / returned if returned else 0.0,
        empty_share=empty / slots if slots else 0.0,
        rows_with_duplicates=duplicates / histories,
    )


def require_validity(validity: CatalogValidity, minimum: float | None, label: str) -> None:
    """ExportError when `minimum` is set and the valid share falls below it."""
    if minimum is not None and validity.valid_share < minimum:
        raise ExportError(
            f"{label}: only {validity.valid_share:.1%} of returned triples are catalog items, below the required "
            f"{minimum:.1%} (min_catalog_validity / --min-catalog-validity); is the catalog the one the model was "
            "trained on? A catalog-constrained decoder (ugt_ensemble.model.ConstrainedRecommender) returns 100 %"
        )


def sample_histories(
    index: CatalogIndex, packing: PackingConfig, count: int, rng: np.random.Generator
) -> list[History]:
    """`count` seeded histories of the catalog's items, 1 to max length events (log-uniform), shortest first."""
    lengths = np.sort(LengthDistribution(f"1-{packing.max_seq_length}").sample(count, rng))
    return [_history(index, int(n), rng) for n in lengths]


def _history(index: CatalogIndex, length: int, rng: np.random.Generator) -> History:
    events = random_history(index.item_ids, length, rng)
    ids = [e if isinstance(e, int) else e["item_id"] for e in events]
    kinds = [TOKEN_TYPE_OF_EVENT["view"] if isinstance(e, int) else TOKEN_TYPE_OF_EVENT[e["type"]] for e in events]
    return History(np.array(ids, dtype=np.int64), np.array(kinds, dtype=np.int64))


def _repeats(items: np.ndarray) -> int:
    return int(len(np.unique(items)) != len(items))
