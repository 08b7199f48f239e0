"""The request guard's HTTP checks on a request head (pure functions; the relay is tested on a real server)."""

from __future__ import annotations

import pytest

from ugt_ensemble.server.guard_http import Refused, check_request, error_response, parse_head

LIMIT = 1000


def head(*lines: str) -> bytes:
    return "\r\n".join(("POST /v2/models/m/infer HTTP/1.1", "Host: x", *lines)).encode()


def test_a_plain_body_within_the_limit_passes_with_its_length():
    assert check_request(parse_head(head("Content-Length: 12")), LIMIT) == 12
    assert check_request(parse_head(head("Content-Encoding: identity", "Content-Length: 3")), LIMIT) == 3
    assert check_request(parse_head(head()), LIMIT) == 0


@pytest.mark.parametrize(
    ("lines", "status", "unread"),
    [
        (("Content-Encoding: gzip", "Content-Length: 300"), 415, 300),
        (("Content-Encoding: DEFLATE", "Content-Length: 10"), 415, 10),
        (("Content-Encoding: gzip", "Content-Encoding: identity", "Content-Length: 1"), 415, 1),
        (("Content-Length: 1001",), 413, 1001),
        (("Content-Length: 99999999",), 413, 0),  # far above the limit: not read, the connection closes
        (("Transfer-Encoding: chunked",), 411, 0),
        (("Content-Length: ten",), 400, 0),
        (("Content-Length: -1",), 400, 0),
    ],
)
def test_refusals_name_the_reason_and_say_what_is_left_to_read(lines, status, unread):
    with pytest.raises(Refused) as refused:
        check_request(parse_head(head(*lines)), LIMIT)
    assert (refused.value.status, refused.value.unread) == (status, unread)


def test_a_malformed_header_line_is_refused():
    with pytest.raises(Refused, match="malformed"):
        parse_head(head("no colon here"))


def test_keep_alive_follows_http_1_1_and_1_0_rules():
    assert parse_head(head()).keep_alive()
    assert not parse_head(head("Connection: close")).keep_alive()
    assert not parse_head(b"GET / HTTP/1.0\r\nHost: x").keep_alive()
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive()


def test_the_expect_header_is_dropped_when_relayed():
    relayed = parse_head(head("Expect: 100-continue", "Content-Length: 1")).header_bytes(drop=("expect",))
    assert b"Expect" not in relayed and relayed.endswith(b"Content-Length: 1\r\n\r\n")


def test_an_error_response_is_json_and_closes():
    response = error_response(415, "no gzip")
    assert response.startswith(b"HTTP/1.1 415 Unsupported Media Type\r\n")
    assert b"Connection: close" in response and response.endswith(b'{"error": "no gzip"}')
