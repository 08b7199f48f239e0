"""`ServingContext` on a real tritonserver: started, probed and watched on entry; stopped and cleaned up on exit."""

from __future__ import annotations

from ugt_ensemble.server.context import ServingContext
from ugt_ensemble.server.probe import probe_ensemble
from ugt_ensemble.server.stubs import stubs_of


def test_the_context_serves_watches_and_leaves_nothing_behind(built, tmp_path):
    config, result = built
    context = ServingContext.create(result.repository, log_path=tmp_path / "tritonserver.log", watch_interval_s=0.5)
    with context:
        assert context.ensemble == config.export.model_name
        assert context.watchdog is not None and context.pid == context.server.process.pid
        probe_ensemble(context.grpc_url, context.ensemble)
        assert stubs_of(context.pid)  # the Python-backend steps run
        watchdog, pid = context.watchdog, context.pid
    assert context.watchdog is None and not watchdog._thread.is_alive()
    assert context.server.process.poll() is not None
    assert len(context.cleanups) == 1 and not stubs_of(pid)
