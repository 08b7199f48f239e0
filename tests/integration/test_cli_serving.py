"""`serve`, `infer` and `demo` as a user runs them (subprocesses, real tritonserver)."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ugt_ensemble.server import Ports

PYTHON = [sys.executable, "-m", "ugt_ensemble"]


def _wait_for_line(process, needle, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} in output:\n{''.join(lines)}")


def _without_key(env):
    return {k: v for k, v in env.items() if not k.startswith("UGT_OPERATOR_KEY")}


def test_serve_infer_and_stop_on_sigterm(built, tmp_path):
    config, result = built
    ports = Ports.free()
    serve = subprocess.Popen(
        [
            *PYTHON,
            "serve",
            "--model-repository",
            str(result.repository),
            "--http-port",
            str(ports.http),
            "--grpc-port",
            str(ports.grpc),
            "--metrics-port",
            str(ports.metrics),
            "--log-file",
            str(tmp_path / "t.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**_without_key(os.environ), "UGT_STATE_DIR": str(tmp_path)},
    )
    try:
        started = "".join(_wait_for_line(serve, "Serving 'ugt_recommend'"))
        (tmp_path / "histories.jsonl").write_text('[1, 2, 3]\n\n[{"item_id": 4, "type": "click"}]\n')
        url = f"127.0.0.1:{ports.grpc}"
        shown = subprocess.run(
            [*PYTHON, "infer", "--url", url, "--file", str(tmp_path / "histories.jsonl"), "[]"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count(": 50 items") == 3
        as_json = subprocess.run(
            [*PYTHON, "infer", "--url", url, "--json", "[5]", '["x"]'], capture_output=True, text=True, timeout=120
        )
        assert as_json.returncode == 1  # one of the histories failed
        first, second = (json.loads(line) for line in as_json.stdout.splitlines())
        assert len(first["item_ids"]) == 50 and "event 0" in second["error"]
        assert_the_request_guard_serves(ports)
    finally:
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, out
    assert "tritonserver stopped" in out
    assert f"gRPC 127.0.0.1:{ports.grpc}, HTTP http://127.0.0.1:{ports.http}" in started
    assert "through the request guard" in started
    assert f"Operator key: {tmp_path / 'operator.key'}" in started  # where it is, never the key itself
    assert (tmp_path / "operator.key").read_text().strip() not in started + out


def assert_the_request_guard_serves(ports):
    """Clients reach the request guard on serve's ports: a gzip body is refused there, metrics pass."""
    body = gzip.compress(b'{"inputs":[{"name":"HISTORY","datatype":"BYTES","shape":[1,1],"data":["[1]"]}]}')
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports.http}/v2/models/ugt_recommend/infer",
        data=body,
        method="POST",
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 415
    with urllib.request.urlopen(f"http://127.0.0.1:{ports.metrics}/metrics", timeout=30) as metrics:
        assert b"nv_inference_request_success" in metrics.read()


def test_demo_command(tmp_path):
    demo = subprocess.run(
        [*PYTHON, "demo", "--output-dir", str(tmp_path / "ensemble")], capture_output=True, text=True, timeout=900
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    for label in ("3 bare item ids", "12 typed events", "300 mixed events", "cold start (empty history)"):
        assert f"✓ {label}: 50 distinct catalog items" in demo.stdout
    assert "✓ malformed (unknown event type): error returned to that request only" in demo.stdout
    assert "single-request latency" in demo.stdout
