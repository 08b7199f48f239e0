"""Shared parts of the business-rules benchmark (`python -m ugt_ensemble_dev.bench.rules`): a progress that
records each step's seconds, Markdown tables, and seeded histories over a served catalog."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.progress import StepProgress


class RecordingProgress(StepProgress):
    """A `StepProgress` that also appends (title, seconds) of every step it ran to `times` (a list it may share)."""

    def __init__(self, enabled: bool = True, times: list[tuple[str, float]] | None = None) -> None:
        super().__init__(0, enabled=enabled)
        self.times: list[tuple[str, float]] = times if times is not None else []

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.perf_counter()
        with super().step(title):
            yield
        self.times.append((title, time.perf_counter() - start))


@contextlib.contextmanager
def timed(times: list[tuple[str, float]], title: str) -> Iterator[None]:
    """Append (title, seconds of the block) to `times` once the block has finished."""
    start = time.perf_counter()
    yield
    times.append((title, time.perf_counter() - start))


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats are written with 3 significant decimals, None as "-"."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def stage_table(times: Sequence[tuple[str, float]], total_label: str | None = "total") -> str:
    """(stage, seconds) rows as a Markdown table, with a total row when `total_label` is given."""
    rows: list[list[object]] = [[title, seconds] for title, seconds in times]
    if total_label:
        rows.append([f"**{total_label}**", sum(seconds for _, seconds in times)])
    return markdown(["stage", "seconds"], rows)


def seeded_histories(item_ids: np.ndarray, count: int, length: int, seed: int) -> list[list]:
    """`count` seeded histories of `length` events each over `item_ids` (events as `random_history` makes them)."""
    rng = np.random.default_rng(seed)
    return [random_history(item_ids, length, rng) for _ in range(count)]


def as_documents(histories: Sequence[list]) -> list[str]:
    """The plain HISTORY documents (JSON lists) of `histories`."""
    return [history_json(h) for h in histories]


def event_ids(history: Sequence[object]) -> list[int]:
    """The item ids of a history's events (integers or {"item_id": ...} objects)."""
    return [int(e["item_id"]) if isinstance(e, dict) else int(e) for e in history]  # type: ignore[arg-type]


def ensemble_name(repository: Path) -> str:
    """The ensemble a repository serves, from its build manifest (new and older layouts alike)."""
    from ugt_ensemble.repository.manifest import model_names, read_manifest

    return model_names(read_manifest(Path(repository))).ensemble


def served_item_ids(repository: Path) -> np.ndarray:
    """The item ids of the catalog that the newest version of a repository's preprocess serves: its `catalog/`
    folder, or the catalog.npz of an older layout (which `RepositoryInfo` no longer reads)."""
    from ugt_ensemble.repository.inspect import latest_version
    from ugt_ensemble.repository.manifest import model_names, read_manifest
    from ugt_ensemble.runtime.catalog_index import CatalogIndex
    from ugt_ensemble.runtime.contract import CATALOG_DIR

    preprocess = Path(repository) / model_names(read_manifest(Path(repository))).preprocess
    folder = preprocess / str(latest_version(preprocess))
    found = [path for path in (folder / CATALOG_DIR, folder / "catalog.npz") if path.exists()]
    if not found:
        raise FileNotFoundError(f"{folder} holds neither {CATALOG_DIR}/ nor catalog.npz")
    return np.asarray(CatalogIndex.load(found[0]).item_ids)
