"""Overload refused in the protocol, on a real uvicorn: predict's closed admission and a connection
over the bound get a pre-built 503 with Retry-After and a close before the app sees the request;
health, readiness and metrics still answer, and an open admission changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import metrics
from api.app import create_app
from api.batcher import Batcher, QueueFull
from api.protocol import ADMIT
from core.registry import Registry
from core.settings import ApiSettings, Settings
from core.store.db import Database
from tests.unit.fakes import Fake
from tests.unit.wire import (
    connect_to,
    echo_length,
    on_uvicorn,
    read_one_response,
    read_until_closed,
)

BOUND = 3
LIMITS = ApiSettings(max_connections=BOUND, queue_deadline_seconds=1.0, retry_after_seconds=1)


class Admission:
    """What the app's lifespan shares: refuses while `wait` (seconds of work ahead) is set, by
    count when it is negative."""

    wait = 0.0

    def admit(self, n: int = 1) -> None:
        if self.wait < 0:
            raise QueueFull("queue full")
        if self.wait:
            raise QueueFull("overloaded", wait=self.wait)


ADMISSION = Admission()
SEEN: list[str] = []  # paths the app was called for


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A lifespan that shares `ADMISSION`, and `echo_length` for every request it sees."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            scope["state"][ADMIT] = ADMISSION.admit
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    SEEN.append(scope["path"])
    await echo_length(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with on_uvicorn(app, LIMITS, lifespan="on") as running:
        yield running


@pytest.fixture
def port(server: Any) -> Iterator[int]:
    """The server's port, once the connections of earlier tests are gone."""
    deadline = time.monotonic() + 5
    while server.server_state.connections:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    SEEN.clear()
    yield server.config.port
    ADMISSION.wait = 0.0


def request(path: bytes, body: bytes = b"x", method: bytes = b"POST") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (
        method,
        path,
        len(body),
        body,
    )


def _refusals() -> float:
    sample = metrics.REQUESTS.labels(route="/v1/predict", method="POST", status="503")
    return float(sample._value.get())


def test_closed_admission_refuses_predict_in_the_protocol_with_retry_after(port: int) -> None:
    ADMISSION.wait = 5.0  # 4 s past the 1 s deadline
    before = _refusals()
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict?x=1", b'{"inputs": "a"}'))
        answer = read_until_closed(conn)  # everything until the server closes
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 503")
    assert b"\r\nretry-after: 4" in head and b"\r\nconnection: close" in head
    assert answer.endswith(b'{"detail":"overloaded: the expected wait is past the deadline"}')
    assert SEEN == []  # the app never saw it
    assert _refusals() == before + 1  # the shed-ratio series still counts it


def test_closed_admission_leaves_other_routes_and_methods_to_the_app(port: int) -> None:
    ADMISSION.wait = 5.0
    with connect_to(port) as conn:
        for sent in (request(b"/v1/feedback"), request(b"/v1/predict", method=b"PUT")):
            conn.sendall(sent)
            assert read_one_response(conn).endswith(b"\r\n\r\n1")
    assert SEEN == ["/v1/feedback", "/v1/predict"]


def test_open_admission_passes_predict_on_a_kept_alive_connection(port: int) -> None:
    with connect_to(port) as conn:
        for _ in range(3):
            conn.sendall(request(b"/v1/predict", b"abc"))
            assert read_one_response(conn).endswith(b"\r\n\r\n3")
    assert SEEN == ["/v1/predict"] * 3


def test_a_connection_over_the_bound_is_refused_but_health_answers(port: int) -> None:
    held = [connect_to(port) for _ in range(BOUND)]
    try:
        for conn in held:  # each is served: within the bound
            conn.sendall(request(b"/v1/predict"))
            assert read_one_response(conn).startswith(b"HTTP/1.1 200")
        with connect_to(port) as over:
            for path in (b"/healthz", b"/readyz", b"/metrics"):
                over.sendall(request(path, b"", method=b"GET"))
                assert read_one_response(over).startswith(b"HTTP/1.1 200"), path
            over.sendall(request(b"/v1/feedback"))
            answer = read_until_closed(over)
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"\r\nretry-after: 1\r\n" in answer and b'"too many connections"' in answer
        assert SEEN == ["/v1/predict"] * BOUND + ["/healthz", "/readyz", "/metrics"]
    finally:
        for conn in held:
            conn.close()


def test_the_bound_frees_as_connections_close(port: int) -> None:
    with connect_to(port), connect_to(port), connect_to(port):
        pass
    time.sleep(0.2)
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict"))
        assert read_one_response(conn).startswith(b"HTTP/1.1 200")


def test_the_api_shares_its_admission_with_the_protocol(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(Database(sqlite_url), tmp_path / "artifacts")
    registry.register(
        registry.staging_dir(), task="classification", labels=Fake.labels, base_model="f"
    )
    registry.promote("v1")
    settings = Settings(home=tmp_path, database_url=sqlite_url, api=ApiSettings(open=True))
    api = create_app(settings, load=lambda v: Fake(v.version))
    body = b'{"inputs": "fine"}'
    predict = b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    predict += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with (
        on_uvicorn(api, settings.api, lifespan="on") as running,
        connect_to(running.config.port) as conn,
    ):
        deadline = time.monotonic() + 30
        while True:  # until the champion is loaded and one prediction has measured the rate
            conn.sendall(predict)
            if read_one_response(conn).startswith(b"HTTP/1.1 200"):
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        monkeypatch.setattr(Batcher, "expected_wait", lambda self, n=1: 5.0)
        monkeypatch.setattr(Batcher, "idle", False)  # work ahead to shed
        conn.sendall(predict)
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 503") and b"\r\nretry-after: 4\r\n" in answer
    assert b"x-request-id" not in answer.lower()  # answered by the protocol, not the app
    assert b"past the deadline" in answer


def test_a_queue_full_by_count_is_refused_with_the_least_retry_after(port: int) -> None:
    ADMISSION.wait = -1.0  # sentinel: refuse by count (no expected wait)
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict"))
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 503") and b"\r\nretry-after: 1\r\n" in answer
    assert answer.endswith(b'{"detail":"queue full"}')
