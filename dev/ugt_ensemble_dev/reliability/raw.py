"""Requests as a careless or hostile client sends them: raw gRPC contents and HTTP binary data.

tritonclient always serialises BYTES tensors correctly; these helpers put any bytes on the wire,
so a length prefix can lie, an element can be missing, or bytes can trail the last element.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from typing import Sequence

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

#: A BYTES element whose 4-byte length prefix claims 2**31 - 1 bytes while only 3 follow.
POISON = struct.pack("<I", 2**31 - 1) + b"[1]"
#: numpy dtypes of the Triton datatypes a response of the ensemble holds.
_DTYPES = {"INT64": np.int64, "FP32": np.float32, "INT32": np.int32, "FP64": np.float64}


def bytes_element(document: bytes) -> bytes:
    """One correctly serialised BYTES element (length prefix + data)."""
    return struct.pack("<I", len(document)) + document


def bytes_tensor(documents: Sequence[bytes]) -> bytes:
    """The raw contents of a correctly serialised BYTES tensor holding `documents` in order."""
    return b"".join(bytes_element(d) for d in documents)


class RawGrpc:
    """ModelInfer with hand-made raw_input_contents."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(
            url, options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        )
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def infer(self, model: str, raw: bytes, rows: int = 1, name: str = "HISTORY") -> tuple[str, str]:
        """(status code name, message): ("OK", "") when the server answered."""
        code, message, _ = self.infer_outputs(model, raw, rows, name)
        return code, message

    def infer_outputs(
        self, model: str, raw: bytes, rows: int = 1, name: str = "HISTORY"
    ) -> tuple[str, str, dict[str, np.ndarray]]:
        """(status code name, message, outputs by name); outputs are empty unless the code is "OK"."""
        request = service_pb2.ModelInferRequest(model_name=model)
        tensor = request.inputs.add()
        tensor.name, tensor.datatype = name, "BYTES"
        tensor.shape.extend([rows, 1])
        request.raw_input_contents.append(raw)
        try:
            response = self.stub.ModelInfer(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or "", {}
        return "OK", "", decode_grpc_outputs(response)

    def close(self) -> None:
        self.channel.close()


def decode_grpc_outputs(response: service_pb2.ModelInferResponse) -> dict[str, np.ndarray]:
    """The numeric outputs of a ModelInferResponse (raw_output_contents, in output order)."""
    outputs = {}
    for tensor, raw in zip(response.outputs, response.raw_output_contents):
        dtype = _DTYPES.get(tensor.datatype)
        if dtype is not None:
            outputs[tensor.name] = np.frombuffer(raw, dtype=dtype).reshape(tuple(tensor.shape))
    return outputs


def http_binary(
    http_url: str, model: str, raw: bytes, rows: int = 1, name: str = "HISTORY", timeout_s: float = 60.0
) -> tuple[int, str]:
    """POST /v2/models/<model>/infer with `raw` as the binary data of a BYTES input; (HTTP status, body)."""
    parameters = {"binary_data_size": len(raw)}
    header = json.dumps({"inputs": [{"name": name, "shape": [rows, 1], "datatype": "BYTES", "parameters": parameters}]})
    request = urllib.request.Request(
        f"{http_url}/v2/models/{model}/infer",
        data=header.encode() + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def decode_http_outputs(body: str) -> dict[str, np.ndarray]:
    """The numeric outputs of a JSON inference response body (no binary outputs requested)."""
    outputs = {}
    for tensor in json.loads(body).get("outputs", []):
        dtype = _DTYPES.get(tensor.get("datatype"))
        if dtype is not None:
            outputs[tensor["name"]] = np.asarray(tensor["data"], dtype=dtype).reshape(tensor["shape"])
    return outputs
