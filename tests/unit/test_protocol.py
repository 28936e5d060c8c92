"""The api's HTTP protocol on a real uvicorn server: heads over the limit get 431 (finished or
not), slow or silent clients are cut with 408, and ordinary requests, big bodies and keep-alive
are untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core.settings import ApiSettings
from tests.unit.wire import (
    connect_to,
    echo_length,
    on_uvicorn,
    read_one_response,
    read_until_closed,
)

LIMITS = ApiSettings(max_head_bytes=8192, head_timeout_seconds=0.5, body_timeout_seconds=0.5)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with on_uvicorn(echo_length, LIMITS) as server:
        yield server.config.port


def request(body: bytes = b"", extra: bytes = b"") -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
    ) + body


def test_ordinary_requests_a_big_body_in_one_write_and_keep_alive_pass(port: int) -> None:
    with connect_to(port) as conn:
        conn.sendall(request(b"x" * (1 << 20)))  # head and 1 MiB of body, far over the head limit
        assert read_one_response(conn).endswith(b"\r\n\r\n1048576")
        time.sleep(0.3)  # under the head timeout: the connection is kept
        conn.sendall(request(b"abc"))
        assert read_one_response(conn).endswith(b"\r\n\r\n3")


def test_a_finished_head_over_the_limit_is_431(port: int) -> None:
    with connect_to(port) as conn:
        conn.sendall(request(extra=b"X-Big: " + b"a" * 10_000 + b"\r\n"))
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431") and b"request head too large" in answer


def test_an_endless_head_is_cut_at_the_limit(port: int) -> None:
    sent = 0
    with connect_to(port) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        with pytest.raises(OSError):  # the server closes long before 20 MiB
            for _ in range(20 * 16):
                conn.sendall(b"a" * 65536)
                sent += 65536
        answer = read_until_closed(conn)
    assert sent < 4 << 20
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "partial",
    [b"POST / HTTP/1.1\r\nHost: t\r\n", request(b"0123456789")[:-5]],
    ids=["half a head", "half a body"],
)
def test_a_half_sent_request_is_408_after_the_timeout(port: int, partial: bytes) -> None:
    with connect_to(port) as conn:
        started = time.monotonic()
        conn.sendall(partial)
        answer = read_until_closed(conn)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.4 < waited < 3


def test_a_silent_connection_is_closed_after_the_head_timeout(port: int) -> None:
    with connect_to(port) as conn:
        started = time.monotonic()
        assert read_until_closed(conn) == b""
        assert time.monotonic() - started < 3
