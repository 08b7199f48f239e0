"""A server that heals: kill -9 of each Python-backend stub under load is followed by correct answers again,
without a manual restart (the watchdog `serve` runs reloads the broken step)."""

import os
import signal
import time

import numpy as np
import pytest

from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.stubs import stubs_of
from ugt_ensemble.server.watchdog import Watchdog
from ugt_ensemble.serving.traffic import Traffic

EXPLICIT = ("--model-control-mode=explicit", "--load-model=*")


@pytest.fixture(scope="module")
def healing_server(built, tmp_path_factory):
    config, result = built
    log = tmp_path_factory.mktemp("healing") / "tritonserver.log"
    with TritonServer(
        result.repository, ready_models=[config.export.model_name], extra_args=EXPLICIT, log_path=log
    ) as s:
        watchdog = Watchdog(s.grpc_url, s.process.pid, result.repository, config.export.model_name, interval_s=0.5)
        watchdog.start()
        yield s, watchdog
        watchdog.stop()


@pytest.mark.parametrize("step", ["preprocess", "ugt_trt", "postprocess"])
def test_a_killed_stub_is_healed_under_load(built, healing_server, step):
    config, result = built
    server, watchdog = healing_server
    rng = np.random.default_rng(2)
    histories = [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(1, 80, 16)]
    (stub,) = [s for s in stubs_of(server.process.pid) if s.model == step]
    heals_before = len(watchdog.heals)
    with Traffic(server.grpc_url, config.export.model_name, histories, concurrency=8) as traffic:
        time.sleep(1.0)
        killed = time.monotonic()
        os.kill(stub.pid, signal.SIGKILL)
        time.sleep(12.0)
    answers = traffic.stop()  # sorted by send time
    failed = [a for a in answers if a.error]
    recovered = max((a.sent for a in failed), default=killed) - killed
    after = [a for a in answers if a.sent > killed + recovered]
    assert recovered < 8 and len(after) >= 50 and all(a.error is None for a in after), (recovered, len(after))
    assert all("not healthy" in a.error for a in failed), failed[:2]
    healed = [h for h in watchdog.heals[heals_before:] if h.model == step]
    assert healed and healed[-1].ok, watchdog.heals
    assert [s.model for s in stubs_of(server.process.pid)].count(step) == 1


def test_a_probe_that_times_out_while_requests_are_answered_reloads_nothing(built, healing_server):
    """Overload is not a fault: reloading healthy steps (or restarting) under peak load makes an outage."""
    config, result = built
    server, _ = healing_server
    rng = np.random.default_rng(3)
    histories = [history_json(random_history(result.catalog.item_ids, 60, rng)) for _ in range(8)]
    # A probe deadline no answer can meet stands in for an overloaded server.
    watchdog = Watchdog(
        server.grpc_url, server.process.pid, result.repository, config.export.model_name, 0.5, probe_timeout_s=0.001
    )
    stubs = {s.instance: s.pid for s in stubs_of(server.process.pid)}
    with Traffic(server.grpc_url, config.export.model_name, histories, concurrency=4) as traffic:
        time.sleep(0.5)
        watchdog.start()
        time.sleep(4.0)
        watchdog.stop()
    assert all(a.error is None for a in traffic.stop())
    assert watchdog.heals == [] and watchdog.fatal is None and watchdog.overloaded_rounds >= 4
    assert {s.instance: s.pid for s in stubs_of(server.process.pid)} == stubs
    watchdog.broken_steps()  # without traffic there is no progress: the same failing probe now means a hang
    assert set(watchdog.broken_steps()) >= {"preprocess", "ugt_trt", "postprocess"}
