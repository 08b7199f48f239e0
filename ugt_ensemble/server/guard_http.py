"""The HTTP half of the request guard: an HTTP/1.1 relay that bounds a request before tritonserver reads it.

tritonserver 2.51 inflates a `Content-Encoding: gzip` (or deflate) body whole before any limit applies (measured:
a 299 KiB body inflating to 300 MiB took tritonserver from 42 MiB to 1.2 GiB RSS, 342 MiB kept), and it has no
flag to bound or refuse it. The guard listens on the public port and relays each request to tritonserver on a
loopback port, after these checks on the request head alone:
- a body with any `Content-Encoding` but `identity` is refused (415): inference bodies are sent uncompressed;
- a body above `max_body_bytes` (its `Content-Length`) is refused (413), and so is a chunked body (411), whose
  size is not known before it is read;
- a head above 64 KiB is refused (431).
A refused request gets a JSON error (`{"error": ...}`, as Triton's own) and the connection is closed. One
backend connection per client connection keeps HTTP/1.1 keep-alive and ordering as they are. `Expect:
100-continue` is answered here, so a client's body is only sent after its head passed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 << 10
_STATUS = {
    400: "Bad Request",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
}


class Refused(Exception):
    """A request the guard answers itself with `status` and `message`."""

    def __init__(self, status: int, message: str, unread: int = 0) -> None:
        super().__init__(message)
        #: Bytes of the refused request's body still to read (and discard) before answering.
        self.status, self.message, self.unread = status, message, unread


@dataclass
class Head:
    """A parsed HTTP/1.1 message head: the start line, the header lines as sent, and lower-cased values."""

    start: bytes
    lines: list[bytes]
    fields: dict[str, str]

    def header_bytes(self, drop: tuple[str, ...] = ()) -> bytes:
        kept = [line for line in self.lines if line.split(b":", 1)[0].strip().lower().decode("latin-1") not in drop]
        return self.start + b"\r\n" + b"".join(line + b"\r\n" for line in kept) + b"\r\n"

    def keep_alive(self) -> bool:
        connection = self.fields.get("connection", "").lower()
        if self.start.upper().endswith(b"HTTP/1.0") or self.start.upper().startswith(b"HTTP/1.0"):
            return "keep-alive" in connection
        return "close" not in connection


def parse_head(data: bytes) -> Head:
    """The head in `data` (without the blank line); Refused(400) if it is not HTTP."""
    start, *lines = data.split(b"\r\n")
    fields: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise Refused(400, "a malformed header line")
        key = name.strip().lower().decode("latin-1")
        value_text = value.strip().decode("latin-1")
        fields[key] = f"{fields[key]}, {value_text}" if key in fields else value_text
    return Head(start, lines, fields)


def check_request(head: Head, max_body_bytes: int) -> int:
    """The body length `head` announces, once the head passed the guard's checks (Refused otherwise).

    A refused body of at most twice the limit is read and discarded first (`Refused.unread`), so that a client
    that sends its whole body before reading gets the answer; a larger one is not read: the connection closes."""
    if "chunked" in head.fields.get("transfer-encoding", "").lower():
        raise Refused(411, "a chunked request body is refused; send Content-Length")
    try:
        length = int(head.fields.get("content-length", "0") or "0")
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None
    if length < 0:
        raise Refused(400, "Content-Length is negative")
    unread = length if length <= 2 * max_body_bytes else 0
    if length > max_body_bytes:
        raise Refused(413, f"the request body is {length} bytes; the limit is {max_body_bytes}", unread)
    encoding = head.fields.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise Refused(
            415,
            f"compressed request bodies are refused (Content-Encoding: {encoding[:40]}); send the body uncompressed",
            unread,
        )
    return length


def error_response(status: int, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status} {_STATUS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next message head from `reader`; None at a clean end of stream; Refused(431) when it is too long."""
    try:
        data = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise Refused(400, "the connection closed inside a request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise Refused(431, f"the request head is above {MAX_HEAD_BYTES} bytes") from None
    return parse_head(data[:-4])


class HttpGuard:
    """Relays HTTP/1.1 from clients to `backend` (host, port) once each request head passed `check_request`."""

    def __init__(self, backend: tuple[str, int], max_body_bytes: int) -> None:
        self.backend, self.max_body_bytes = backend, max_body_bytes
        self.refused = 0

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        return await asyncio.start_server(self.handle, host, port, limit=MAX_HEAD_BYTES, reuse_address=True)

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend_w = None
        try:
            backend_r, backend_w = await asyncio.open_connection(*self.backend, limit=MAX_HEAD_BYTES)
            while await self._relay_one(client_r, client_w, backend_r, backend_w):
                pass
        except Refused as exc:
            self.refused += 1
            await _discard(client_r, exc.unread)
            client_w.write(error_response(exc.status, exc.message))
            await _drain(client_w)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_w, backend_w):
                if writer is not None:
                    writer.close()

    async def _relay_one(self, client_r, client_w, backend_r, backend_w) -> bool:  # noqa: ANN001 - asyncio streams
        """Relay one request and its response; whether the connection stays open."""
        head = await read_head(client_r)
        if head is None:
            return False
        length = check_request(head, self.max_body_bytes)
        if "100-continue" in head.fields.get("expect", "").lower():
            client_w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        backend_w.write(head.header_bytes(drop=("expect",)))
        await _copy(client_r, backend_w, length)
        response = await read_head(backend_r)
        if response is None:
            raise Refused(502, "tritonserver closed the connection")
        client_w.write(response.header_bytes())
        await _relay_body(backend_r, client_w, response, head)
        return head.keep_alive() and response.keep_alive()


async def _relay_body(reader, writer, response: Head, request: Head) -> None:  # noqa: ANN001 - asyncio streams
    status = response.start.split(b" ", 2)[1:2]
    if request.start.upper().startswith(b"HEAD ") or status in ([b"204"], [b"304"]):
        await _drain(writer)
        return
    if "chunked" in response.fields.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            await _copy(reader, writer, size + 2)  # the chunk and its CRLF
            if size == 0:
                return
    elif "content-length" in response.fields:
        await _copy(reader, writer, int(response.fields["content-length"]))
    else:  # the body ends when the server closes
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await _drain(writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
    while count > 0:
        chunk = await reader.read(min(count, 1 << 16))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", count)
        writer.write(chunk)
        count -= len(chunk)
        await _drain(writer)
    await _drain(writer)


async def _discard(reader: asyncio.StreamReader, count: int) -> None:
    while count > 0 and (chunk := await reader.read(min(count, 1 << 16))):
        count -= len(chunk)


async def _drain(writer: asyncio.StreamWriter) -> None:
    await writer.drain()
