"""The api's HTTP protocol on a real uvicorn server: heads over the limit get 431 (finished or
not), slow or silent clients are cut with 408, and ordinary requests, big bodies and keep-alive
are untouched."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

import api.protocol
from api.protocol import GuardedHttpTools
from core.settings import ApiSettings
from tuneloop.processes import free_port

LIMITS = ApiSettings(max_head_bytes=8192, head_timeout_seconds=0.5, body_timeout_seconds=0.5)


async def echo_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer 200 with the length of the request body."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size, more = size + len(message.get("body", b"")), message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextmanager
def on_uvicorn(app: Any, limits: ApiSettings, **overrides: Any) -> Iterator[uvicorn.Server]:
    """`app` served by a real uvicorn with `GuardedHttpTools` under `limits`, in a thread;
    `overrides` replace uvicorn's settings (`lifespan="on"`, `timeout_keep_alive=1`)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(api.protocol, "_limits", lambda: limits)
    config = uvicorn.Config(
        app,
        port=free_port(),
        http=GuardedHttpTools,
        loop="asyncio",
        **{"log_level": "warning", "lifespan": "off", **overrides},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
        patch.undo()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with on_uvicorn(echo_length, LIMITS) as server:
        yield server.config.port


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _answer(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 5 s pass)."""
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _one_answer(conn: socket.socket) -> bytes:
    """One whole response on a kept-alive connection (its head says its length)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _framed_length(data):
        chunk = conn.recv(65536)
        assert chunk, data
        data += chunk
    return data


def _framed_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return len(head) + 4 + length


def request(body: bytes = b"", extra: bytes = b"") -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
    ) + body


def test_ordinary_requests_a_big_body_in_one_write_and_keep_alive_pass(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(request(b"x" * (1 << 20)))  # head and 1 MiB of body, far over the head limit
        assert _one_answer(conn).endswith(b"\r\n\r\n1048576")
        time.sleep(0.3)  # under the head timeout: the connection is kept
        conn.sendall(request(b"abc"))
        assert _one_answer(conn).endswith(b"\r\n\r\n3")


def test_a_finished_head_over_the_limit_is_431(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(request(extra=b"X-Big: " + b"a" * 10_000 + b"\r\n"))
        answer = _answer(conn)
    assert answer.startswith(b"HTTP/1.1 431") and b"request head too large" in answer


def test_an_endless_head_is_cut_at_the_limit(port: int) -> None:
    sent = 0
    with _connect(port) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        with pytest.raises(OSError):  # the server closes long before 20 MiB
            for _ in range(20 * 16):
                conn.sendall(b"a" * 65536)
                sent += 65536
        answer = _answer(conn)
    assert sent < 4 << 20
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "partial",
    [b"POST / HTTP/1.1\r\nHost: t\r\n", request(b"0123456789")[:-5]],
    ids=["half a head", "half a body"],
)
def test_a_half_sent_request_is_408_after_the_timeout(port: int, partial: bytes) -> None:
    with _connect(port) as conn:
        started = time.monotonic()
        conn.sendall(partial)
        answer = _answer(conn)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.4 < waited < 3


def test_a_silent_connection_is_closed_after_the_head_timeout(port: int) -> None:
    with _connect(port) as conn:
        started = time.monotonic()
        assert _answer(conn) == b""
        assert time.monotonic() - started < 3
