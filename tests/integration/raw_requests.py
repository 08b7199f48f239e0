"""Requests as a careless or hostile client sends them: raw gRPC contents and HTTP binary data.

tritonclient always serialises BYTES tensors correctly; these helpers put any bytes on the wire.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

#: A BYTES element whose 4-byte length prefix claims 2**31 - 1 bytes while only 3 follow.
POISON = struct.pack("<I", 2**31 - 1) + b"[1]"


def bytes_element(document: bytes) -> bytes:
    """One correctly serialised BYTES element (length prefix + data)."""
    return struct.pack("<I", len(document)) + document


class RawGrpc:
    """ModelInfer with hand-made raw_input_contents; returns (status code name, message)."""

    def __init__(self, url: str) -> None:
        self.channel = grpc.insecure_channel(url)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def infer(self, model: str, raw: bytes, rows: int = 1, name: str = "HISTORY") -> tuple[str, str]:
        request = service_pb2.ModelInferRequest(model_name=model)
        tensor = request.inputs.add()
        tensor.name, tensor.datatype = name, "BYTES"
        tensor.shape.extend([rows, 1])
        request.raw_input_contents.append(raw)
        try:
            self.stub.ModelInfer(request, timeout=60)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
        return "OK", ""

    def close(self) -> None:
        self.channel.close()


def http_binary(http_url: str, model: str, raw: bytes, rows: int = 1, name: str = "HISTORY") -> tuple[int, str]:
    """POST /v2/models/<model>/infer with `raw` as the binary data of a BYTES input; (HTTP status, body)."""
    parameters = {"binary_data_size": len(raw)}
    header = json.dumps({"inputs": [{"name": name, "shape": [rows, 1], "datatype": "BYTES", "parameters": parameters}]})
    request = urllib.request.Request(
        f"{http_url}/v2/models/{model}/infer",
        data=header.encode() + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
