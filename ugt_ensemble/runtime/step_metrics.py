"""`StepMetrics`: what a Python step publishes on Triton's /metrics beside Triton's own statistics
(`pb_utils.MetricFamily`; names and meaning in `metric_names`).

Triton's per-model statistics cannot tell a health probe from a user, a rule from none, or a short answer
from a full one, and a stub restart leaves no trace in them: the steps count these themselves.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

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


class StepMetrics:
    """The metrics of one step instance; create it first thing in `initialize(args)` (it counts the start)."""

    def __init__(self, args: dict) -> None:
        self._labels = {"model": str(args["model_name"]), "version": str(args["model_version"])}
        self._families: dict[str, Any] = {}
        self._metrics: dict[tuple[str, tuple], Any] = {}
        self._metric(names.STEP_STARTS).increment(1)
        self._metric(names.STEP_START_TIME).set(time.time())

    def traffic(self, requests: Sequence) -> list[bool]:
        """Count the requests of one execute() as user or probe traffic; whether each is a probe."""
        probes = [names.is_probe(_parameters(request)) for request in requests]
        for kind, count in ((names.PROBE, sum(probes)), (names.USER, len(probes) - sum(probes))):
            self._metric(names.REQUESTS, traffic=kind).increment(count)  # 0 too: the series exist from the start
        return probes

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
            self._metric(names.RULE_REQUESTS, rule=rule).increment(count)

    def answers(self, outcomes: Sequence[Outcome], probes: Sequence[bool]) -> None:
        """Count the answered rows of user requests, and those holding padding (fewer than K items)."""
        rows = [o.outputs[ITEM_IDS] for o, probe in zip(outcomes, probes) if o.outputs is not None and not probe]
        if not rows:
            return
        ids = np.concatenate([r.reshape(len(r), -1) for r in rows])
        self._metric(names.ANSWERS).increment(len(ids))
        self._metric(names.SHORT_ANSWERS).increment(int((ids == PAD_ITEM_ID).any(axis=1).sum()))

    def catalog(self, items: int, fingerprint: str) -> None:
        """Publish the served catalog's size and fingerprint (the version is the step's own label)."""
        self._metric(names.CATALOG_ITEMS, fingerprint=fingerprint).set(items)

    def _metric(self, name: str, **labels: str) -> Any:
        key = (name, tuple(sorted(labels.items())))
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
