"""Answer a dynamic batch request by request: one bad request never fails its neighbours.

`answer_batch` parses every request on its own, runs the good ones together in one vectorised
call, and, should that call fail, retries them one by one so that only the culprit gets an
error. It never raises; each request gets exactly one `Outcome`, whose error carries the Triton
code: INVALID_ARG for a `RequestError` (the client's fault), INTERNAL for anything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from .errors import SERVER_ERROR, describe_error

LOGGER = logging.getLogger(__name__)

Request = TypeVar("Request")
Parsed = TypeVar("Parsed")
Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """Either the outputs of one request or the error it gets (message and Triton error code)."""

    outputs: Outputs | None = None
    error: str | None = None
    code: str = SERVER_ERROR

    @classmethod
    def failed(cls, exc: BaseException) -> Outcome:
        message, code = describe_error(exc)
        return cls(error=message, code=code)


def answer_batch(
    requests: Sequence[Request],
    parse_one: Callable[[Request], Parsed],
    run_batch: Callable[[list[Parsed]], list[Outputs]],
    guard: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Parse each request, run the valid ones as one batch, and return one outcome per request. When `guard`
    (e.g. `data_files.FileGuard.check`: the model's data files are intact) raises, every request gets its error."""
    if guard is not None:
        try:
            guard()
        except Exception as exc:  # noqa: BLE001 - the whole batch is refused, nothing is run
            return [Outcome.failed(exc)] * len(requests)
    outcomes: list[Outcome | None] = [None] * len(requests)
    positions, parsed = [], []
    for i, request in enumerate(requests):
        try:
            parsed.append(parse_one(request))
            positions.append(i)
        except Exception as exc:  # noqa: BLE001 - any failure stays with its request
            outcomes[i] = Outcome.failed(exc)
    for i, outcome in zip(positions, _run_isolated(parsed, run_batch)):
        outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]


def _run_isolated(parsed: list[Any], run_batch: Callable[[list[Any]], list[Outputs]]) -> list[Outcome]:
    if not parsed:
        return []
    try:
        results = run_batch(parsed)
        if len(results) != len(parsed):
            raise RuntimeError(f"batch returned {len(results)} results for {len(parsed)} requests")
        return [Outcome(outputs=r) for r in results]
    except Exception as exc:  # noqa: BLE001
        if len(parsed) == 1:
            return [Outcome.failed(exc)]
        LOGGER.warning("batch of %d failed (%s); retrying one by one", len(parsed), exc)
        return [_run_isolated([p], run_batch)[0] for p in parsed]


def row_bounds(counts: Sequence[int]) -> list[tuple[int, int]]:
    """(start, stop) of each request's rows in a batch where request i holds `counts[i]` rows."""
    bounds, start = [], 0
    for count in counts:  # a few requests per batch: plain ints beat numpy's set-up here
        bounds.append((start, start + int(count)))
        start += int(count)
    return bounds
