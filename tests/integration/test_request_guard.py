"""The request guard in front of a real tritonserver: compressed bombs never reach it, everything else does.

Measured without the guard (tritonserver 2.51): a 299 KiB gzip body inflating to 300 MiB took tritonserver
from 42 MiB to 1.2 GiB RSS over HTTP, and the same as a gzip gRPC message to 1.2 GiB, kept. These tests send
such bombs through the guard and read tritonserver's peak RSS (VmHWM) before and after.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import grpc
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
import tritonclient.http as httpclient

from ugt_ensemble.client import RecommendClient
from ugt_ensemble.server import Ports, TritonServer
from ugt_ensemble.server.request_guard import GuardPlan, RequestGuard

LIMIT = 4 << 20
BOMB = 100 << 20


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def _history_body(size: int) -> bytes:
    history = "[" + " " * size + "1]"
    tensor = {"name": "HISTORY", "datatype": "BYTES", "shape": [1, 1], "data": [history]}
    return json.dumps({"inputs": [tensor]}).encode()


@pytest.fixture(scope="module")
def guarded(built):
    config, result = built
    with TritonServer(result.repository, ready_models=[config.export.model_name]) as server:
        public = Ports.free()
        plan = GuardPlan("127.0.0.1", public.http, public.grpc, server.ports.http, server.ports.grpc, LIMIT)
        guard = RequestGuard(plan).start()
        try:
            yield server, plan, guard
        finally:
            guard.stop()
    assert not guard.is_running()


def test_requests_pass_the_guard_on_both_protocols(guarded):
    server, plan, _ = guarded
    with RecommendClient(f"127.0.0.1:{plan.grpc_port}") as client:
        assert len(client.recommend_one(b"[1, 2, 3]").item_ids) == 50
    http = httpclient.InferenceServerClient(f"127.0.0.1:{plan.http_port}")
    assert http.is_server_ready()
    request = urllib.request.Request(
        f"http://127.0.0.1:{plan.http_port}/v2/models/ugt_recommend/infer", data=_history_body(10), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert {o["name"] for o in json.load(response)["outputs"]} >= {"ITEM_IDS", "SCORES"}


def test_the_operator_key_and_refusals_pass_through(guarded):
    server, plan, _ = guarded
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{plan.grpc_port}")
    with pytest.raises(Exception, match="restricted"):
        client.get_model_repository_index()
    assert client.get_model_repository_index(headers=server.grpc_operator_headers()).models
    http = httpclient.InferenceServerClient(f"127.0.0.1:{plan.http_port}")
    with pytest.raises(Exception, match="restricted"):
        http.unload_model("preprocess")
    assert client.is_model_ready("preprocess")


def test_a_gzip_http_body_is_refused_before_tritonserver_inflates_it(guarded):
    server, plan, _ = guarded
    before = _peak_rss_mib(server.process.pid)
    request = urllib.request.Request(
        f"http://127.0.0.1:{plan.http_port}/v2/models/ugt_recommend/infer",
        data=gzip.compress(_history_body(BOMB), 9),
        method="POST",
        headers={"Content-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 415
    assert "Content-Encoding: gzip" in json.load(refused.value)["error"]
    big = urllib.request.Request(
        f"http://127.0.0.1:{plan.http_port}/v2/models/ugt_recommend/infer", data=b"x" * (LIMIT + 1), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as too_big:
        urllib.request.urlopen(big, timeout=60)
    assert too_big.value.code == 413
    assert _peak_rss_mib(server.process.pid) < before + 32


def test_a_gzip_grpc_message_is_refused_before_tritonserver_inflates_it(guarded):
    server, plan, guard = guarded
    before = _peak_rss_mib(server.process.pid)
    request = pb.ModelInferRequest(model_name="ugt_recommend")
    tensor = request.inputs.add(name="HISTORY", datatype="BYTES", shape=[1, 1])
    tensor.contents.bytes_contents.append(b"[" + b" " * BOMB + b"1]")
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{plan.grpc_port}", options, compression=grpc.Compression.Gzip) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            pbg.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=120)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _peak_rss_mib(server.process.pid) < before + 32
    assert _peak_rss_mib(guard.process.pid) < 200  # the guard inflates at most LIMIT bytes
    with RecommendClient(f"127.0.0.1:{plan.grpc_port}") as client:  # and still serves
        assert len(client.recommend_one(b"[4]").item_ids) == 50
