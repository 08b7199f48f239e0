"""Steady traffic in the background that keeps every answer: when it was sent, what came back.

Used to show that a rollout, a rollback or a dead stub fails no request (or how many), and at which
point in time the answers switch from one version to another.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ugt_ensemble.runtime.contract import ITEM_IDS, SCORES, SEMANTIC_IDS


@dataclass(frozen=True)
class Answer:
    """One request: its history (an index into the traffic's histories), send and answer times, and
    the items and scores that came back (None with `error` when it failed)."""

    history: int
    sent: float
    seconds: float
    item_ids: np.ndarray | None
    scores: np.ndarray | None
    error: str | None = None
    semantic_ids: np.ndarray | None = None


@dataclass
class Traffic:
    """`concurrency` clients sending `histories` in turn to `model` at `url` until `stop()`."""

    url: str
    model: str
    histories: Sequence[str]
    concurrency: int = 8
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> list[Answer]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        return sorted(self.answers, key=lambda a: a.sent)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.error is not None]

    async def _run(self) -> None:
        import tritonclient.grpc.aio as aioclient

        counter = iter(range(10**12))
        async with aioclient.InferenceServerClient(self.url) as client:
            await asyncio.gather(*(self._worker(client, counter) for _ in range(self.concurrency)))

    async def _worker(self, client, counter) -> None:  # noqa: ANN001 - tritonclient's aio client, an iterator
        from tritonclient.utils import InferenceServerException

        from ugt_ensemble.client.grpc_client import history_tensor

        while not self._stop.is_set():
            index = next(counter) % len(self.histories)
            tensor = history_tensor([self.histories[index]])
            sent = time.monotonic()
            try:
                result = await client.infer(self.model, [tensor], client_timeout=60)
            except InferenceServerException as exc:
                self.answers.append(Answer(index, sent, time.monotonic() - sent, None, None, str(exc)[:300]))
                continue
            items, scores, codes = (result.as_numpy(name)[0] for name in (ITEM_IDS, SCORES, SEMANTIC_IDS))
            self.answers.append(Answer(index, sent, time.monotonic() - sent, items, scores, semantic_ids=codes))


def switches(labels: Sequence[str]) -> list[str]:
    """The runs of equal labels in order, e.g. ["A", "B", "A"] for A A B B B A."""
    runs: list[str] = []
    for label in labels:
        if not runs or runs[-1] != label:
            runs.append(label)
    return runs
