"""The api on the wire: a real uvicorn server with the guarded protocol in a thread, and raw
sockets that read what it sends."""

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


def connect_to(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes (or 5 s pass)."""
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def read_one_response(conn: socket.socket) -> bytes:
    """One whole response on a kept-alive connection (its head says its length)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < framed_length(data):
        chunk = conn.recv(65536)
        assert chunk, data
        data += chunk
    return data


def framed_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return len(head) + 4 + length
