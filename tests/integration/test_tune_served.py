"""`bench --tune` against a real tritonserver: candidates are reloaded through Triton's load API, and the
chosen settings are written into a copy of the session's repository, which then serves."""

from __future__ import annotations

import shutil
import subprocess
import sys

from ugt_ensemble.client import RecommendClient
from ugt_ensemble.repository.deployment import validate_deployment
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.repository.step_settings import StepSettings, read_step_config, settings_of
from ugt_ensemble.server import TritonServer


def _bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ugt_ensemble", "bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_tune_measures_candidates_writes_the_winner_and_the_result_serves(built, tmp_path):
    _, result = built
    repository = tmp_path / "ensemble"
    shutil.copytree(result.repository, repository)
    info = RepositoryInfo.read(repository)
    current = settings_of(read_step_config(repository, info.model_step))
    out = tmp_path / "tune"
    done = _bench(
        "--model-repository", str(repository), "--tune", "--tune-instances", "1,2", "--tune-threads", "1",
        "--tune-delays", "0", "--rounds", "1", "--duration", "0.5", "--warmup", "2", "--concurrency", "2",
        "--history-lengths", "5-40", "--histories", "16", "--tune-margin", "0", "--write-config",
        "--output-dir", str(out), "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = (out / "tune.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ") and "inst" in line]
    assert len(rows) == 3, report  # the current settings and two candidates, all measured
    assert all("not loadable" not in row for row in rows) and "current" in report
    chosen = settings_of(read_step_config(repository, info.model_step))
    assert chosen in {current, StepSettings(1, 1, 0), StepSettings(2, 1, 0)}
    assert f"{chosen.label()}" in report.split("Choice:")[1] or "kept the current" in report
    assert validate_deployment(repository)["valid"]
    with TritonServer(repository, ready_models=[info.ensemble]) as server:
        with RecommendClient(server.grpc_url, model_name=info.ensemble) as client:
            assert len(client.recommend_one([1, 2, 3]).items()) == info.num_recommendations


def test_tune_refuses_a_remote_server(built):
    _, result = built
    done = _bench("--model-repository", str(result.repository), "--tune", "--url", "127.0.0.1:1")
    assert done.returncode != 0 and "--tune starts its own tritonserver" in done.stderr
    assert "Traceback" not in done.stderr
