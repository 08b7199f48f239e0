"""Nobody without the operator key changes the server (real tritonserver, explicit model control as `serve`).

Without the key (or with a wrong one), over HTTP and gRPC: a load of a new model whose `file:1/model.py`
override would run code in a stub, an unload of the model step or the ensemble, logging, trace and
shared-memory registration are refused, while requests through the ensemble keep being answered
correctly. With the key the same unload and load work. Inference, health, metadata, model configuration
and statistics stay open.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from ugt_ensemble.client import RecommendClient, RecommendError
from ugt_ensemble.deploy.k8s_security import restriction_flags
from ugt_ensemble.export.compare import ranked_mismatches
from ugt_ensemble.histories import history_json, random_history
from ugt_ensemble.server import TritonServer
from ugt_ensemble.server.context import EXPLICIT_ARGS
from ugt_ensemble.server.operator_key import HEADER, OperatorKey
from ugt_ensemble_dev.traffic import Traffic

EXPLICIT = EXPLICIT_ARGS  # explicit model control, as serve runs it
STEP = "ugt_trt"
WRONG = OperatorKey("not-the-operator-key-0123456789", "a guess")
#: A Python model that leaves a mark when its code runs: the proof that an override load ran nothing.
MODEL_PY = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
import triton_python_backend_utils as pb


class TritonPythonModel:
    def execute(self, requests):
        return [pb.InferenceResponse([pb.Tensor("OUT", pb.get_input_tensor_by_name(r, "IN").as_numpy())])
                for r in requests]
"""
X_CONFIG = json.dumps(
    {
        "name": "x",
        "backend": "python",
        "max_batch_size": 0,
        "input": [{"name": "IN", "data_type": "TYPE_INT32", "dims": [1]}],
        "output": [{"name": "OUT", "data_type": "TYPE_INT32", "dims": [1]}],
    }
)


@pytest.fixture(scope="module")
def keyed(built, tmp_path_factory):
    config, result = built
    log = tmp_path_factory.mktemp("operator-key") / "tritonserver.log"
    model = config.export.model_name
    with TritonServer(result.repository, ready_models=[model], extra_args=EXPLICIT, log_path=log) as server:
        yield server


@pytest.fixture(scope="module")
def histories(built) -> list[str]:
    _, result = built
    rng = np.random.default_rng(8)
    return [history_json(random_history(result.catalog.item_ids, int(n), rng)) for n in rng.integers(0, 90, 24)]


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status


def _override(marker) -> dict[str, bytes]:  # noqa: ANN001 - a Path
    return {"file:1/model.py": MODEL_PY.format(marker=str(marker)).encode()}


def _http_attempts(server: TritonServer, marker, headers: dict[str, str]) -> dict[str, tuple[int, str]]:  # noqa: ANN001
    base, ensemble = server.http_url, server.ready_models[0]
    files = {k: base64.b64encode(v).decode() for k, v in _override(marker).items()}
    calls = {
        "load x with file:1/model.py": ("/v2/repository/models/x/load", {"parameters": {"config": X_CONFIG, **files}}),
        f"unload {STEP}": (f"/v2/repository/models/{STEP}/unload", {"parameters": {"unload_dependents": False}}),
        f"unload {ensemble}": (f"/v2/repository/models/{ensemble}/unload", {}),
        "load from disk": (f"/v2/repository/models/{STEP}/load", {}),
        "repository index": ("/v2/repository/index", {}),
        "logging": ("/v2/logging", {"log_verbose_level": 1}),
        "trace": ("/v2/trace/setting", {"trace_level": ["TIMESTAMPS"]}),
        "shared memory": ("/v2/systemsharedmemory/region/r/register", {"key": "/r", "offset": 0, "byte_size": 64}),
    }
    return {what: _post(base + path, body, headers) for what, (path, body) in calls.items()}


def _grpc_attempts(server: TritonServer, marker, headers: dict[str, str]) -> dict[str, str]:  # noqa: ANN001
    ensemble = server.ready_models[0]
    calls = {
        "load x with file:1/model.py": lambda c: c.load_model(
            "x", headers=headers, config=X_CONFIG, files=_override(marker)
        ),
        f"unload {STEP}": lambda c: c.unload_model(STEP, headers=headers),
        f"unload {ensemble}": lambda c: c.unload_model(ensemble, headers=headers),
        "load from disk": lambda c: c.load_model(STEP, headers=headers),
        "repository index": lambda c: c.get_model_repository_index(headers=headers),
        "logging": lambda c: c.update_log_settings({"log_verbose_level": 1}, headers=headers),
        "trace": lambda c: c.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]}, headers=headers),
        "shared memory": lambda c: c.register_system_shared_memory("r", "/r", 64, headers=headers),
    }
    outcomes = {}
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        for what, call in calls.items():
            try:
                call(client)
                outcomes[what] = "OK"
            except InferenceServerException as exc:
                outcomes[what] = f"{exc.status()}: {exc.message()}"
    return outcomes


def _assert_correct(answers, expected) -> None:  # noqa: ANN001
    for answer in answers:
        assert answer.error is None, answer.error
        want = expected[answer.history]
        assert not ranked_mismatches(
            want.item_ids[None], want.scores[None], answer.item_ids[None], answer.scores[None], 1e-4
        )


def test_without_the_key_nothing_changes_and_inference_keeps_answering(keyed, local, histories, tmp_path):
    marker = tmp_path / "ran"
    expected = local.recommend_results(histories)
    refused_http, refused_grpc, rounds = [], [], 5
    with Traffic(keyed.grpc_url, keyed.ready_models[0], histories, concurrency=4) as traffic:
        time.sleep(0.5)
        started = time.monotonic()
        for _ in range(rounds):
            for headers in ({}, WRONG.http_headers()):
                refused_http.append(_http_attempts(keyed, marker, headers))
            for headers in ({}, WRONG.grpc_headers()):
                refused_grpc.append(_grpc_attempts(keyed, marker, headers))
            time.sleep(0.2)
        attempts_s = time.monotonic() - started
        time.sleep(0.5)
    answers = traffic.stop()
    for outcome in refused_http:
        assert {status for status, _ in outcome.values()} == {403}, outcome
        assert all(f"expecting header '{HEADER}'" in body for _, body in outcome.values()), outcome
    for outcome in refused_grpc:
        unavailable = "StatusCode.UNAVAILABLE: This protocol is restricted"
        assert all(o.startswith(unavailable) for o in outcome.values()), outcome
    assert not marker.exists()  # the override's code never ran
    during = [a for a in answers if started <= a.sent <= started + attempts_s]
    assert len(during) >= rounds and len(answers) >= 20, (len(during), len(answers))
    _assert_correct(answers, expected)
    with grpcclient.InferenceServerClient(keyed.grpc_url) as client:
        assert client.is_model_ready(STEP) and not client.is_model_ready("x")
    refused = sum(len(o) for o in refused_http + refused_grpc)
    print(
        f"\n{refused} refused calls (HTTP 403, gRPC UNAVAILABLE) in {attempts_s:.1f} s; meanwhile "
        f"{len(during)} of {len(during)} ensemble requests answered correctly ({len(answers)} in all, 0 failed)"
    )


def test_inference_health_metadata_config_and_statistics_stay_open(keyed):
    base, ensemble = keyed.http_url, keyed.ready_models[0]
    for path in ("/v2/health/ready", "/v2/health/live", "/v2", f"/v2/models/{ensemble}", f"/v2/models/{STEP}/config",
                 f"/v2/models/{ensemble}/stats", f"/v2/models/{ensemble}/ready"):  # fmt: skip
        assert _get(base + path) == 200, path
    assert _get(keyed.metrics_url) == 200
    with grpcclient.InferenceServerClient(keyed.grpc_url) as client:
        assert client.get_server_metadata().version and client.get_model_config(STEP).config.name == STEP
        assert client.get_inference_statistics(ensemble).model_stats
    with RecommendClient(keyed.grpc_url, model_name=ensemble) as client:
        assert client.recommend_one([1, 2, 3]).ok


def test_with_the_key_the_same_unload_and_load_work(keyed, local, histories, tmp_path):
    ensemble, http, grpc = keyed.ready_models[0], keyed.http_operator_headers(), keyed.grpc_operator_headers()
    expected = local.recommend_results(histories)
    with grpcclient.InferenceServerClient(keyed.grpc_url) as client, RecommendClient(keyed.grpc_url) as reco:
        for unload, load in (("http", "grpc"), ("grpc", "http")):
            if unload == "http":
                status, body = _post(f"{keyed.http_url}/v2/repository/models/{STEP}/unload", {}, http)
                assert status == 200, body
            else:
                client.unload_model(STEP, headers=grpc)
            _wait(lambda: not client.is_model_ready(STEP))
            with pytest.raises(RecommendError):
                reco.recommend_one([1, 2, 3])  # the step is really gone
            if load == "grpc":
                client.load_model(STEP, headers=grpc)
            else:
                status, body = _post(f"{keyed.http_url}/v2/repository/models/{STEP}/load", {}, http)
                assert status == 200, body
            assert client.is_model_ready(STEP) and client.is_model_ready(ensemble)
            served = reco.recommend_results(histories, concurrency=4)
            for want, got in zip(expected, served):
                assert got.ok, got.error
                assert not ranked_mismatches(want.item_ids[None], want.scores[None], got.item_ids[None],
                                             got.scores[None], 1e-4)  # fmt: skip
        marker = tmp_path / "ran"
        client.load_model("x", headers=grpc, config=X_CONFIG, files=_override(marker))
        assert marker.read_text() == "ran" and client.is_model_ready("x")  # what the key holder may do
        client.unload_model("x", headers=grpc)
        status, body = _post(f"{keyed.http_url}/v2/logging", {"log_verbose_level": 0}, http)
        assert status == 200 and json.loads(body)["log_verbose_level"] == 0


def _wait(condition, timeout_s: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_flags_the_manifests_render_restrict_a_real_tritonserver(tmp_path):
    """The Kubernetes command's flags, once Kubernetes has put the Secret's value in for $(UGT_OPERATOR_KEY)."""
    key = OperatorKey("a-key-from-a-kubernetes-secret", "a Secret")
    flags = [flag.replace("$(UGT_OPERATOR_KEY)", key.value) for flag in restriction_flags()]
    (tmp_path / "repository").mkdir()
    extra = ("--model-control-mode=explicit", *flags)
    with TritonServer(tmp_path / "repository", extra_args=extra, restrict_api=False) as server:
        body = {"parameters": {"config": X_CONFIG}}
        assert _post(f"{server.http_url}/v2/repository/models/x/load", body)[0] == 403
        assert _post(f"{server.http_url}/v2/logging", {"log_verbose_level": 0}, WRONG.http_headers())[0] == 403
        assert _post(f"{server.http_url}/v2/logging", {"log_verbose_level": 0}, key.http_headers())[0] == 200
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            with pytest.raises(InferenceServerException, match="This protocol is restricted"):
                client.update_log_settings({"log_verbose_level": 0})
            assert client.update_log_settings({"log_verbose_level": 0}, headers=key.grpc_headers())
