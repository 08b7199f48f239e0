"""`StepMetrics`: what a Python step publishes on Triton's /metrics beside Triton's own statistics
(`pb_utils.MetricFamily`; names and meaning in `metric_names`).

Triton's per-model statistics cannot tell a health probe from a user, a rule from none, or a short answer
from a full one, and a stub restart leaves no trace in them: the steps count these themselves.

Every metric call is a synchronous round trip from the stub to the server (~60 us on a 2-core host: 4 per
rule-free request cost ~0.23 ms of p50 at concurrency 1, BENCHMARKS.md). So a request adds its counts to a table
in the stub, and a background thread sends each non-zero sum once per `FLUSH_S` seconds (and `close()`, from the
step's `finalize`, sends the rest): /metrics lags the traffic by at most `FLUSH_S`, and a killed stub loses at
most that much of its counts. A series first appears at 0 when its family is first used.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

import numpy as np
import triton_python_backend_utils as pb_utils

from . import metric_names as names
from .batching import Outcome
from .contract import ITEM_IDS, PAD_ITEM_ID

if TYPE_CHECKING:
    from .rule_request import RuleRequest

#: name -> (description, kind); pb_utils.MetricFamily exists only once the stub runs a model (not while Triton
#: imports model.py to auto-complete its config), so it is looked up when a family is made.
_COUNTER, _GAUGE = "COUNTER", "GAUGE"
_FAMILIES = {
    names.REQUESTS: ("Requests a step received, by traffic: user or probe (ugt-ensemble)", _COUNTER),
    names.RULE_REQUESTS: ("User requests that used a business rule, by rule (ugt-ensemble)", _COUNTER),
    names.ANSWERS: ("Answers (one per history) to user requests (ugt-ensemble)", _COUNTER),
    names.SHORT_ANSWERS: ("Answers to user requests with fewer than K items (ugt-ensemble)", _COUNTER),
    names.CATALOG_ITEMS: ("Items of the served catalog, labelled with its fingerprint (ugt-ensemble)", _GAUGE),
    names.STEP_STARTS: ("initialize() calls of the step's stub: starts, restarts and heals (ugt-ensemble)", _COUNTER),
    names.STEP_START_TIME: ("When the step's stub last started, seconds since the epoch (ugt-ensemble)", _GAUGE),
}


LOGGER = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
#: Seconds between two sends of the counts (Prometheus scrapes every 15-60 s).
FLUSH_S = 1.0


def _never_raises(method: F) -> F:
    """A metric is never worth a request: a failure to count is logged (once per method) and ignored (`traffic`
    then says no request is a probe)."""
    failed: list[bool] = []

    @functools.wraps(method)
    def counted(self: StepMetrics, requests: Sequence, *args: Any) -> Any:
        try:
            return method(self, requests, *args)
        except Exception as exc:  # noqa: BLE001
            if not failed:
                failed.append(True)
                LOGGER.warning("ugt metrics: %s failed (%s); not counted", method.__name__, exc)
            return [False] * len(requests) if method.__name__ == "traffic" else None

    return counted  # type: ignore[return-value]


class StepMetrics:
    """The metrics of one step instance; create it first thing in `initialize(args)` (it counts the start), and
    `close()` it in `finalize()`."""

    def __init__(self, args: dict, flush_s: float = FLUSH_S) -> None:
        self._labels = {"model": str(args["model_name"]), "version": str(args["model_version"])}
        self._families: dict[str, Any] = {}
        self._metrics: dict[tuple[str, tuple], Any] = {}
        self._pending: dict[tuple[str, tuple], int] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._send_failed = False
        self._metric(names.STEP_STARTS).increment(1)
        self._metric(names.STEP_START_TIME).set(time.time())
        self._sender = threading.Thread(target=self._send_every, args=(flush_s,), name="ugt-metrics", daemon=True)
        self._sender.start()

    def flush(self) -> None:
        """Send the counts added since the last send (one message per series that moved)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, count in pending.items():
            self._metrics[key].increment(count)

    def close(self) -> None:
        """Stop the sending thread and send what is left (the step's `finalize`)."""
        self._closed.set()
        self._sender.join(timeout=10)
        self._flush_logged()

    def _send_every(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - a metric is never worth the step
            if not self._send_failed:
                self._send_failed = True
                LOGGER.warning("ugt metrics: sending the counts failed (%s); those are lost (logged once)", exc)

    @_never_raises
    def traffic(self, requests: Sequence) -> list[bool]:
        """Count the requests of one execute() as user or probe traffic; whether each is a probe."""
        probes = [names.is_probe(_parameters(request)) for request in requests]
        for kind, count in ((names.PROBE, sum(probes)), (names.USER, len(probes) - sum(probes))):
            self._count(names.REQUESTS, count, traffic=kind)
        return probes

    @_never_raises
    def rules(self, request: Any, rules: Iterable[RuleRequest], default_exclude_history: bool) -> None:
        """Count the rules of a user request's rows (a probe's are not counted; exclude_history as applied: the
        request's or the repository's default)."""
        if names.is_probe(_parameters(request)):
            return
        used = dict.fromkeys(names.RULES, 0)
        for rule in rules:
            used["exclude"] += bool(len(rule.exclude))
            used["sets"] += bool(rule.sets)
            history = default_exclude_history if rule.exclude_history is None else rule.exclude_history
            used["exclude_history"] += bool(history)
        for rule, count in used.items():
            self._count(names.RULE_REQUESTS, count, rule=rule)

    @_never_raises
    def answers(self, outcomes: Sequence[Outcome], probes: Sequence[bool]) -> None:
        """Count the answered rows of user requests, and those holding padding (fewer than K items)."""
        answers = short = 0
        for outcome, probe in zip(outcomes, probes):
            ids = None if outcome.outputs is None or probe else np.asarray(outcome.outputs[ITEM_IDS])
            if ids is not None and ids.ndim >= 1 and len(ids):
                answers += len(ids)
                short += int((ids.reshape(len(ids), -1) == PAD_ITEM_ID).any(axis=1).sum())
        if answers:
            self._count(names.ANSWERS, answers)
            self._count(names.SHORT_ANSWERS, short)

    @_never_raises
    def catalog(self, items: int, fingerprint: str) -> None:
        """Publish the served catalog's size and fingerprint (the version is the step's own label)."""
        self._metric(names.CATALOG_ITEMS, fingerprint=fingerprint).set(items)

    def _count(self, name: str, count: int, **labels: str) -> None:
        """Add `count` to a counter's pending sum (the series is made, at 0, either way)."""
        key = self._key(name, labels)
        if key not in self._metrics:
            self._metric(name, **labels)
        if count:
            with self._lock:
                self._pending[key] = self._pending.get(key, 0) + count

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple]:
        return name, tuple(sorted(labels.items()))

    def _metric(self, name: str, **labels: str) -> Any:
        key = self._key(name, labels)
        metric = self._metrics.get(key)
        if metric is None:
            family = self._families.get(name)
            if family is None:
                description, kind = _FAMILIES[name]
                kind = getattr(pb_utils.MetricFamily, kind)
                family = self._families[name] = pb_utils.MetricFamily(name=name, description=description, kind=kind)
            metric = self._metrics[key] = family.Metric(labels={**self._labels, **labels})
        return metric


def _parameters(request: Any) -> str | None:
    try:
        return request.parameters()
    except Exception:  # noqa: BLE001 - a request object without parameters is user traffic
        return None
