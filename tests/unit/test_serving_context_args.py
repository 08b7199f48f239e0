"""`ServingContext`: one set of tritonserver arguments for every served repository (serve, bench, reliability)."""

from __future__ import annotations

import json

from ugt_ensemble.server.context import EXPLICIT_ARGS, EXPLICIT_MODE, METRICS_ARGS, ServingContext, server_args
from ugt_ensemble.server.orphans import shm_prefix_args


def test_a_served_repository_gets_explicit_control_metrics_and_its_own_shm_prefix(tmp_path):
    context = ServingContext.create(tmp_path, "recommend", watch_interval_s=0.5)
    command = context.server.command()
    # explicit control without --load-model=*: `start` loads the served versions itself, then the ensemble
    expected = EXPLICIT_MODE + METRICS_ARGS + shm_prefix_args(context.shm_prefix)  # type: ignore[arg-type]
    assert command[-len(expected) :] == list(expected) and "--load-model=*" not in command
    assert context.load_models == ("recommend",) and context.watch_interval_s == 0.5
    assert context.shm_prefix != ServingContext.create(tmp_path, "recommend").shm_prefix  # one per server


def test_without_explicit_control_there_is_no_repository_api_and_no_watchdog(tmp_path):
    context = ServingContext.create(tmp_path, "recommend", explicit=False, watch_interval_s=2.0, ready_models=["a"])
    assert not set(EXPLICIT_ARGS) & set(context.server.command())
    assert context.watch_interval_s == 0.0 and context.server.ready_models == ("a",)
    assert server_args(False) == METRICS_ARGS


def test_the_ensemble_comes_from_the_manifest_and_an_unstarted_context_stops_quietly(tmp_path):
    names = {"preprocess_name": "pre", "step_name": "step", "postprocess_name": "post"}
    (tmp_path / "ugt_build.json").write_text(json.dumps({"ensemble": "my_ensemble", "triton": names}))
    context = ServingContext.create(tmp_path)
    assert context.ensemble == "my_ensemble" and context.load_models == ("my_ensemble",)
    assert context.stop() is None and context.cleanups == [] and context.pid is None
