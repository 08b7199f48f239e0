"""NVIDIA's tools on a built repository, as README shows them: `eval "$(python -m ugt_ensemble env)"`, a
bare tritonserver, perf_analyzer with the input data `build` writes; and statistics that tell the truth
(no warm-up requests on a fresh server, refused requests counted, a step loadable at max_batch_size 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from ugt_ensemble.repository.input_data import input_data_files
from ugt_ensemble.repository.inspect import RepositoryInfo
from ugt_ensemble.server import Ports, TritonServer
from ugt_ensemble.serving.metrics import model_stats

#: A fresh shell: no venv on PATH, no library path.
BARE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}


def _stats(url: str, model: str) -> dict:
    with urllib.request.urlopen(f"{url}/v2/models/{model}/stats", timeout=10) as response:
        return json.load(response)["model_stats"][0]


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    for _ in range(480):
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.25)
    pytest.fail(f"bare tritonserver not ready:\n{log.read_text()[-3000:]}")


def test_the_build_writes_real_shaped_input_data(built):
    _, result = built
    info = RepositoryInfo.read(result.repository)
    files = input_data_files(result.repository)
    assert files.ensemble.parent == result.repository.parent / f"{result.repository.name}_tools"
    ensemble = json.loads(files.ensemble.read_text())["data"]
    histories = [json.loads(row["HISTORY"]["content"][0]) for row in ensemble]
    ids = {e if isinstance(e, int) else e["item_id"] for h in histories for e in h}
    assert len(histories) == 16 and histories[0] == [] and max(map(len, histories)) > 50
    assert ids <= set(result.catalog.item_ids.tolist())
    step = json.loads(files.model_step.read_text())["data"]
    for row, name in ((r, n) for r in step for n in ("encoder_l1_ids", "encoder_l2_ids", "encoder_l3_ids")):
        level = int(name[9]) - 1
        values = np.array(row[name]["content"])
        assert values.min() >= 0 and values.max() < info.index.codebook_sizes[level]  # random data broke this
        assert row[name]["shape"][0] in info.packing.buckets


def test_bare_tritonserver_and_perf_analyzer_run_after_eval_env(built, tmp_path):
    _, result = built
    info, files = RepositoryInfo.read(result.repository), input_data_files(result.repository)
    ports, log = Ports.free(), tmp_path / "bare.log"
    env = {**BARE_ENV, "PY": sys.executable, "REPO": str(result.repository)}
    script = (
        'eval "$("$PY" -m ugt_ensemble env)" && exec tritonserver --model-repository="$REPO" '
        '--backend-directory="$UGT_TRITON_BACKEND_DIR" '
        f"--http-port={ports.http} --grpc-port={ports.grpc} --metrics-port={ports.metrics} "
        "--http-address=127.0.0.1 --grpc-address=127.0.0.1 --metrics-address=127.0.0.1"
    )
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(f"http://127.0.0.1:{ports.http}", server, log)
        for model, data in ((info.ensemble, files.ensemble), (info.model_step, files.model_step)):
            command = (
                f'eval "$("$PY" -m ugt_ensemble env)" && perf_analyzer -m {model} -u 127.0.0.1:{ports.grpc} -i grpc '
                f"--input-data {data} -p 2000 --request-count 16"
            )
            done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert "Successful request count: 16" in done.stdout or "Request count: 16" in done.stdout, done.stdout
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_statistics_tell_the_truth(built, tmp_path):
    config, result = built
    info = RepositoryInfo.read(result.repository)
    args = ("--model-control-mode=explicit", "--load-model=*")
    log = tmp_path / "tritonserver.log"
    with TritonServer(result.repository, ready_models=[info.ensemble], extra_args=args, log_path=log) as server:
        fresh = _stats(server.http_url, info.model_step)
        assert fresh["inference_count"] == 0 and fresh["execution_count"] == 0  # was 65: Triton's warm-up samples

        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            bad = grpcclient.InferInput("HISTORY", [1, 1], "BYTES")
            bad.set_data_from_numpy(np.array([[b"not json"]], dtype=object))
            with pytest.raises(grpcclient.InferenceServerException, match="not valid JSON"):
                client.infer(info.ensemble, [bad])
            with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
                metrics = response.read().decode()
            line = f'ugt_request_failure{{code="INVALID_ARG",model="{info.preprocess}",version="1"}} 1'
            assert line in metrics  # before: no failure counted for preprocess anywhere
            assert _stats(server.http_url, info.ensemble)["inference_stats"]["fail"]["count"] >= 1
            # Triton 2.51's Python backend reports an error response as a success (README, "Metrics"):
            assert _stats(server.http_url, info.preprocess)["inference_stats"]["fail"]["count"] == 0
            # ... and `stats` (serving.metrics) moves it to preprocess's failure column
            (row,) = model_stats(metrics, [info.preprocess])
            assert row.failure == 1 and row.success >= 0

            # A Model Analyzer candidate: the model step at max_batch_size 1 (Triton's batch-64 warm-up failed it)
            model_config = client.get_model_config(info.model_step, as_json=True)["config"]
            model_config["max_batch_size"] = 1
            model_config.pop("dynamic_batching", None)
            headers = server.grpc_operator_headers()
            client.load_model(info.model_step, config=json.dumps(model_config), headers=headers)
            assert client.get_model_config(info.model_step).config.max_batch_size == 1
            assert client.is_model_ready(info.model_step)
