"""`rules switch`: a data-only deploy of a new catalog (`Rollout.deploy({}, next.csv)`) on a served repository,
under steady concurrency-8 traffic, timed by stage: the deploy's own progress steps (read the catalog, build the
constraint data, check the served model on it, write the version, move it in) and each model load on the server.

The repository gains a version and serves it afterwards: measure latency and memory before this.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ugt_ensemble.serving.rollout import Rollout
from ugt_ensemble_dev.bench.rules_report import RecordingProgress, markdown, stage_table


class TimedRollout(Rollout):
    """A `Rollout` that appends the seconds of each model load it asks of the server to `times` (the ensemble's
    through `load`, the steps' through `load_steps`, which loads them in parallel)."""

    def __init__(self, times: list[tuple[str, float]], *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Rollout's
        super().__init__(*args, **kwargs)
        self.times = times

    def load(self, *models: str) -> None:
        start = time.perf_counter()
        super().load(*models)
        self.times.append((f"server: load {', '.join(models)}", time.perf_counter() - start))

    def load_steps(self, *extra: int) -> None:
        start = time.perf_counter()
        super().load_steps(*extra)
        self.times.append((f"server: load {', '.join(self.repo.steps)}", time.perf_counter() - start))


def traffic_rows(answers: list, window: tuple[float, float], removed: set[int]) -> list[list[object]]:
    """Per phase (before / during / after the deploy call): requests, failures, p50/p99/max ms, removed items seen."""
    started, ended = window
    rows = []
    for label, keep in (
        ("before the deploy", lambda a: a.sent < started),
        ("during the deploy", lambda a: started <= a.sent <= ended),
        ("after the switch", lambda a: a.sent > ended),
    ):
        chosen = [a for a in answers if keep(a)]
        ms = np.array([a.seconds * 1e3 for a in chosen if a.error is None]) if chosen else np.zeros(0)
        seen = sum(int(i) in removed for a in chosen if a.item_ids is not None for i in a.item_ids)
        pct = np.percentile(ms, [50, 99]).tolist() if ms.size else [None, None]
        failed = sum(a.error is not None for a in chosen)
        rows.append([label, len(chosen), failed, *pct, float(ms.max()) if ms.size else None, seen])
    return rows


def run_switch(
    repository: Path, catalog: Path, concurrency: int = 8, before_s: float = 2.0, after_s: float = 3.0,
    histories: int = 64, history_length: int = 50, seed: int = 0,
) -> str:  # fmt: skip
    """Serve `repository`, deploy `catalog` data-only under traffic; returns the Markdown report."""
    from ugt_ensemble.catalog import load_catalog
    from ugt_ensemble.repository.inspect import RepositoryInfo
    from ugt_ensemble.server import TritonServer
    from ugt_ensemble.server.context import EXPLICIT_ARGS
    from ugt_ensemble_dev.bench.rules_report import as_documents, seeded_histories
    from ugt_ensemble_dev.traffic import Traffic

    info = RepositoryInfo.read(repository)
    old_ids = info.index.item_ids
    documents = as_documents(seeded_histories(old_ids, histories, history_length, seed))
    stages: list[tuple[str, float]] = []  # the deploy's steps and the server's loads, in the order they ran
    progress = RecordingProgress(times=stages)
    with TritonServer(repository, ready_models=[info.ensemble], extra_args=EXPLICIT_ARGS) as server:
        rollout = TimedRollout(stages, repository, server.grpc_url, server.operator_key)
        with Traffic(server.grpc_url, info.ensemble, documents, concurrency=concurrency) as traffic:
            time.sleep(before_s)
            started, start = time.monotonic(), time.perf_counter()
            version = rollout.deploy({}, catalog, progress=progress)
            seconds, ended = time.perf_counter() - start, time.monotonic()
            time.sleep(after_s)
        answers = traffic.stop()
    new_ids = load_catalog(catalog, info.index.codebook_sizes).item_ids
    removed = set(np.setdiff1d(old_ids, new_ids).tolist())
    failures = [a for a in answers if a.error is not None]
    lines = [
        f"Data-only deploy of {catalog} ({len(new_ids)} items: {len(removed)} removed, "
        f"{len(np.setdiff1d(new_ids, old_ids))} added) as version {version} of {repository}: "
        f"{seconds:.2f} s in all, under concurrency-{concurrency} traffic; {len(failures)} failed request(s)"
        + (f" (first: {failures[0].error[:200]})" if failures else ""),
        "",
        "Stages in order (the deploy's steps and the loads it asked of the server; the first loads pin the served "
        "version of a fresh build; the rest of the total is locking and file changes):",
        "",
        stage_table(stages, "stages"),
        "",
        markdown(
            ["traffic", "requests", "failed", "p50 ms", "p99 ms", "max ms", "removed items served"],
            traffic_rows(answers, (started, ended), removed),
        ),  # fmt: skip
    ]
    return "\n".join(lines)
