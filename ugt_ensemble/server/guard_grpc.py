"""The gRPC half of the request guard: a relay whose receive limit bounds every message, compressed or not.

tritonserver 2.51 accepts gRPC messages up to 2 GiB and inflates a gzip-compressed one whole (measured: a
299 KiB message inflating to 300 MiB took tritonserver from 342 MiB to 1.2 GiB RSS, kept), with no flag to bound
it. The guard serves the public gRPC port with gRPC's own `max_receive_message_length`, which gRPC applies while
it inflates a message (a bomb is refused with RESOURCE_EXHAUSTED before it is inflated whole), and relays every
method to tritonserver on a loopback port as raw bytes: unary calls as unary calls, `ModelStreamInfer` as a
stream. Metadata (the operator key included) and deadlines go through; the backend's status code and message
come back as they are.
"""

from __future__ import annotations

from typing import AsyncIterator

import grpc
from grpc import aio

#: The one streaming method of Triton's GRPCInferenceService.
STREAMING = {"/inference.GRPCInferenceService/ModelStreamInfer"}
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
#: Request metadata that gRPC sets itself for each call (relaying it would clash).
_OWN_METADATA = {"user-agent", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout", "te", "content-type"}


def _metadata(context: aio.ServicerContext) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((k, v) for k, v in (context.invocation_metadata() or ()) if k.lower() not in _OWN_METADATA)


def _timeout(context: aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.001)


class GrpcGuard(grpc.GenericRpcHandler):
    """Relays every method to the gRPC server at `backend` ("host:port")."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.channel: aio.Channel | None = None

    def _channel(self) -> aio.Channel:
        if self.channel is None:
            self.channel = aio.insecure_channel(self.backend, options=_UNLIMITED)
        return self.channel

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if method in STREAMING:
            return grpc.stream_stream_rpc_method_handler(self._stream(method))
        return grpc.unary_unary_rpc_method_handler(self._unary(method))

    def _unary(self, method: str):  # noqa: ANN202 - a handler behaviour
        async def relay(request: bytes, context: aio.ServicerContext) -> bytes:
            call = self._channel().unary_unary(method)(request, metadata=_metadata(context), timeout=_timeout(context))
            try:
                return await call
            except aio.AioRpcError as exc:
                await _pass_on(context, exc)
                raise

        return relay

    def _stream(self, method: str):  # noqa: ANN202 - a handler behaviour
        async def relay(requests: AsyncIterator[bytes], context: aio.ServicerContext) -> AsyncIterator[bytes]:
            relayed = self._channel().stream_stream(method)
            call = relayed(requests, metadata=_metadata(context), timeout=_timeout(context))
            try:
                async for response in call:
                    yield response
            except aio.AioRpcError as exc:
                await _pass_on(context, exc)

        return relay


async def _pass_on(context: aio.ServicerContext, exc: aio.AioRpcError) -> None:
    trailing = exc.trailing_metadata()
    if trailing:
        context.set_trailing_metadata(tuple(trailing))
    await context.abort(exc.code(), exc.details() or "")


async def start_grpc_guard(host: str, port: int, backend: str, max_message_bytes: int) -> aio.Server:
    """A started gRPC guard on host:port relaying to `backend`, refusing messages above `max_message_bytes`."""
    server = aio.server(
        handlers=[GrpcGuard(backend)],
        options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", -1),
                 ("grpc.so_reuseport", 0)],  # fmt: skip
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen for gRPC on {address}")
    await server.start()
    return server

