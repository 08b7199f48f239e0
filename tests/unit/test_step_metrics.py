"""`StepMetrics` sends a step's counts from a background thread, summed, not one message per request.

`triton_python_backend_utils` exists only inside a Triton stub, so a recorder stands in for its metric API here
(the served counts are checked against a real tritonserver and Prometheus in test_monitoring_served.py).
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import types

import pytest

from ugt_ensemble.runtime import metric_names as names

ARGS = {"model_name": "preprocess", "model_version": "3"}


class _Request:
    def __init__(self, probe: bool = False) -> None:
        self._parameters = '{"ugt_probe": true}' if probe else "{}"

    def parameters(self) -> str:
        return self._parameters


@pytest.fixture
def metrics_module(monkeypatch):
    """step_metrics imported over a stand-in pb_utils that records every message a stub would send."""
    sent: list[tuple] = []
    lock = threading.Lock()

    class Metric:
        def __init__(self, name: str, labels: dict) -> None:
            self.key = (name, tuple(sorted(labels.items())))

        def increment(self, value: float) -> None:
            with lock:
                sent.append(("increment", self.key, value, threading.current_thread().name))

        def set(self, value: float) -> None:
            with lock:
                sent.append(("set", self.key, value, threading.current_thread().name))

    class MetricFamily:
        COUNTER, GAUGE = "COUNTER", "GAUGE"

        def __init__(self, name: str, description: str, kind: str) -> None:
            self.name = name

        def Metric(self, labels: dict) -> Metric:  # noqa: N802 - pb_utils' name
            return Metric(self.name, labels)

    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", types.SimpleNamespace(MetricFamily=MetricFamily))
    module = importlib.reload(importlib.import_module("ugt_ensemble.runtime.step_metrics"))
    yield module, sent
    monkeypatch.delitem(sys.modules, "ugt_ensemble.runtime.step_metrics")


def _increments(sent: list[tuple], name: str) -> list[tuple]:
    return [(dict(key[1]), value, thread) for kind, key, value, thread in sent
            if kind == "increment" and key[0] == name]  # fmt: skip


def test_requests_add_up_in_the_stub_and_one_message_per_series_goes_from_the_sending_thread(metrics_module):
    module, sent = metrics_module
    metrics = module.StepMetrics(ARGS, flush_s=3600)  # the thread never wakes on its own here
    try:
        assert [kind for kind, *_ in sent] == ["increment", "set"]  # the start, at once
        for _ in range(50):
            assert metrics.traffic([_Request(), _Request(probe=True), _Request()]) == [False, True, False]
        assert _increments(sent, names.REQUESTS) == []  # nothing sent per request
        metrics.flush()
        users = {"model": "preprocess", "version": "3", "traffic": "user"}
        probes = {**users, "traffic": "probe"}
        assert sorted(_increments(sent, names.REQUESTS), key=lambda m: m[1]) == [
            (probes, 50, "MainThread"), (users, 100, "MainThread")
        ]  # fmt: skip
        metrics.flush()
        assert len(_increments(sent, names.REQUESTS)) == 2  # nothing new: nothing sent
    finally:
        metrics.close()


def test_the_thread_sends_within_its_interval_and_close_sends_the_rest(metrics_module):
    module, sent = metrics_module
    metrics = module.StepMetrics(ARGS, flush_s=0.05)
    metrics.traffic([_Request()])
    deadline = time.monotonic() + 30
    while not _increments(sent, names.REQUESTS):
        assert time.monotonic() < deadline, sent
        time.sleep(0.01)
    assert _increments(sent, names.REQUESTS)[0][2] == "ugt-metrics"
    metrics.close()
    assert not metrics._sender.is_alive()
    metrics.traffic([_Request(), _Request()])  # after close (a late request): sent by the next close or flush
    metrics.close()
    assert [value for _, value, _ in _increments(sent, names.REQUESTS)] == [1, 2]


def test_a_failing_send_is_logged_once_and_never_reaches_the_request(metrics_module, caplog):
    module, sent = metrics_module
    metrics = module.StepMetrics(ARGS, flush_s=3600)
    metrics.traffic([_Request()])

    def gone(value: float) -> None:
        raise RuntimeError("stub gone")

    for metric in metrics._metrics.values():
        metric.increment = gone
    metrics._flush_logged()
    assert metrics.traffic([_Request()]) == [False]  # counting goes on
    metrics.close()
    assert [r.getMessage() for r in caplog.records].count(
        "ugt metrics: sending the counts failed (stub gone); those are lost (logged once)"
    ) == 1
