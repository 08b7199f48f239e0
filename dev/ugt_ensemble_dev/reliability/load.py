"""Load shapes for the reliability scenarios, and how to summarise what came back.

Closed loop (`ugt_ensemble_dev.traffic.Traffic`: N clients, each sends when its answer came) shows failures and
latency under a fixed concurrency; open loop (`poisson`: requests arrive at a rate whatever the
answers) shows how the server behaves when traffic does not slow down for it, including bursts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ugt_ensemble.server.stubs import process_rss_mib, stubs_of
from ugt_ensemble_dev.traffic import Answer


@dataclass(frozen=True)
class Summary:
    """Requests, failures (by first words of the error) and latency percentiles (ms) of some answers."""

    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @classmethod
    def of(cls, answers: Sequence[Answer]) -> Summary:
        ok = np.array([a.seconds for a in answers if a.error is None]) * 1e3
        errors: dict[str, int] = {}
        for a in answers:
            if a.error is not None:
                key = a.error.split("] ", 1)[-1][:70]
                errors[key] = errors.get(key, 0) + 1
        pct = lambda q: float(np.percentile(ok, q)) if ok.size else float("nan")  # noqa: E731
        return cls(
            len(answers), len(answers) - ok.size, pct(50), pct(99), float(ok.max()) if ok.size else np.nan, errors
        )


def memory_mib(server_pid: int) -> dict[str, float]:
    """Resident memory of tritonserver and of each stub (by instance name), in MiB."""
    memory = {"tritonserver": process_rss_mib(server_pid) or 0.0}
    memory.update({f"{s.instance}@v{s.version}": s.rss_mib for s in stubs_of(server_pid)})
    return memory


def poisson(url: str, model: str, histories: Sequence[str], rate: float, count: int, seed: int = 0) -> list[Answer]:
    """`count` requests arriving at `rate` per second (exponential gaps); every answer, by send time."""
    return asyncio.run(_open_loop(url, model, histories, np.random.default_rng(seed).exponential(1 / rate, count)))


def burst(url: str, model: str, histories: Sequence[str], count: int) -> list[Answer]:
    """`count` requests sent at once."""
    return asyncio.run(_open_loop(url, model, histories, np.zeros(count)))


async def _open_loop(url: str, model: str, histories: Sequence[str], gaps: np.ndarray) -> list[Answer]:
    import tritonclient.grpc.aio as aioclient
    from tritonclient.utils import InferenceServerException

    from ugt_ensemble.client.grpc_client import history_tensor

    async with aioclient.InferenceServerClient(url) as client:

        async def one(index: int) -> Answer:
            tensor = history_tensor([histories[index % len(histories)]])
            sent = time.monotonic()
            try:
                await client.infer(model, [tensor], client_timeout=120)
            except InferenceServerException as exc:
                return Answer(index, sent, time.monotonic() - sent, None, None, str(exc)[:300])
            return Answer(index, sent, time.monotonic() - sent, None, None)

        tasks = []
        for index, gap in enumerate(gaps):
            tasks.append(asyncio.create_task(one(index)))
            if gap:
                await asyncio.sleep(float(gap))
        return list(await asyncio.gather(*tasks))
