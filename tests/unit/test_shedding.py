"""Overload refused in the protocol, on a real uvicorn: predict's closed admission gets a pre-built
503 with Retry-After before the app sees the request, on a connection kept for the retry when the
body has come (pipelined requests answered in order), closed when it has not; a connection over
the bound is refused and closed; health, readiness and metrics still answer, and an open
admission changes nothing."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import metrics
from api.app import create_app
from api.batcher import Batcher, QueueFull
from api.protocol import ADMIT
from core.logs import log_handler
from core.registry import Registry
from core.settings import ApiSettings, Settings
from core.store.db import Database
from tests.unit.fakes import Fake
from tests.unit.wire import (
    connect_to,
    echo_length,
    framed_length,
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
    with on_uvicorn(app, LIMITS, lifespan="on", timeout_keep_alive=1) as running:
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


def _answers(conn: socket.socket, count: int) -> list[bytes]:
    """The next `count` whole responses on a kept-alive connection, however they were split."""
    data, answers = b"", list[bytes]()
    while len(answers) < count:
        while b"\r\n\r\n" in data and len(data) >= (end := framed_length(data)):
            answers.append(data[:end])
            data = data[end:]
        if len(answers) < count:
            chunk = conn.recv(65536)
            assert chunk, answers
            data += chunk
    assert not data, data  # nothing beyond them
    return answers


def _refusals() -> float:
    sample = metrics.REQUESTS.labels(route="/v1/predict", method="POST", status="503")
    return float(sample._value.get())


def test_closed_admission_refuses_predict_in_the_protocol_and_keeps_the_connection(
    port: int,
) -> None:
    ADMISSION.wait = 5.0  # 4 s past the 1 s deadline
    before = _refusals()
    with connect_to(port) as conn:
        for _ in range(2):
            conn.sendall(request(b"/v1/predict?x=1", b'{"inputs": "a"}'))
            answer = read_one_response(conn)
            head = answer.split(b"\r\n\r\n")[0].lower()
            assert head.startswith(b"http/1.1 503") and b"\r\nretry-after: 4" in head
            assert b"connection: close" not in head
            assert answer.endswith(b'"overloaded: the expected wait is past the deadline"}')
        assert SEEN == []  # the app never saw them
        ADMISSION.wait = 0.0
        conn.sendall(request(b"/v1/predict", b"abc"))  # the retry, on the same connection
        assert read_one_response(conn).endswith(b"\r\n\r\n3")
    assert SEEN == ["/v1/predict"]
    assert _refusals() == before + 2  # the shed-ratio series still counts them


def _timed_refusals() -> tuple[float, float]:
    """(count, sum of seconds) of the protocol's refusal-time histogram."""
    samples = {s.name: s.value for s in metrics.PROTOCOL_REFUSAL_SECONDS.collect()[0].samples}
    return samples["tuneloop_api_protocol_refusal_seconds_count"], samples[
        "tuneloop_api_protocol_refusal_seconds_sum"
    ]


def test_each_protocol_refusal_is_timed_kept_or_closed_and_nothing_else(port: int) -> None:
    count, total = _timed_refusals()
    ADMISSION.wait = 5.0
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict", b'{"inputs": "a"}'))  # kept
        assert read_one_response(conn).startswith(b"HTTP/1.1 503")
    with connect_to(port) as conn:  # its body still to come: closed
        conn.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01")
        assert read_until_closed(conn).startswith(b"HTTP/1.1 503")
    ADMISSION.wait = 0.0
    with connect_to(port) as conn:  # admitted: the app's, not a refusal
        conn.sendall(request(b"/v1/predict", b"abc"))
        assert read_one_response(conn).endswith(b"\r\n\r\n3")
    after_count, after_total = _timed_refusals()
    assert after_count == count + 2
    assert after_total > total  # each observed a time, taken from its bytes' arrival


def test_pipelined_requests_are_answered_in_order_around_kept_refusals(port: int) -> None:
    ADMISSION.wait = 5.0
    with connect_to(port) as conn:
        refused = request(b"/v1/predict")
        # behind a request the app is answering, predict is the app's to answer, in turn
        conn.sendall(
            refused + refused + request(b"/v1/feedback", b"abcd") + request(b"/v1/predict", b"ab")
        )
        answers = _answers(conn, 4)
        conn.sendall(refused)  # the app has answered all: the protocol refuses again
        answers += _answers(conn, 1)
    assert [a[:12] for a in answers] == [b"HTTP/1.1 503"] * 2 + [b"HTTP/1.1 200"] * 2 + [
        b"HTTP/1.1 503"
    ]
    assert answers[2].endswith(b"\r\n\r\n4") and answers[3].endswith(b"\r\n\r\n2")
    assert SEEN == ["/v1/feedback", "/v1/predict"]


def test_a_kept_refusal_leaves_the_connection_to_the_keep_alive_timeout(port: int) -> None:
    ADMISSION.wait = 5.0
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict"))
        assert read_one_response(conn).startswith(b"HTTP/1.1 503")
        started = time.monotonic()
        assert read_until_closed(conn) == b""  # closed by the server, idle
        assert time.monotonic() - started < 3  # the 1 s keep-alive, not the socket's 5 s


@pytest.mark.parametrize(
    "sent",
    [
        b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234",
        request(b"/v1/predict").replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n"),
        request(b"/v1/predict").replace(b"HTTP/1.1", b"HTTP/1.0"),
    ],
    ids=["body still to come", "client asks close", "HTTP/1.0"],
)
def test_a_refusal_closes_when_its_body_is_unread_or_the_client_asks(
    port: int, sent: bytes
) -> None:
    ADMISSION.wait = 5.0
    with connect_to(port) as conn:
        conn.sendall(sent)
        started = time.monotonic()
        answer = read_until_closed(conn)  # everything until the server closes
    assert time.monotonic() - started < 1  # closed at once, not at a timeout
    assert answer.startswith(b"HTTP/1.1 503") and b"\r\nconnection: close\r\n" in answer
    assert answer.endswith(b"}")
    assert SEEN == []


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
        assert answer.startswith(b"HTTP/1.1 503") and b"\r\nconnection: close\r\n" in answer
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
        answer = read_one_response(conn)
    assert answer.startswith(b"HTTP/1.1 503") and b"\r\nretry-after: 4\r\n" in answer
    assert b"\r\ndate:" not in answer.lower()  # answered by the protocol, not the app
    assert b"past the deadline" in answer


def test_a_queue_full_by_count_is_refused_with_the_least_retry_after(port: int) -> None:
    ADMISSION.wait = -1.0  # sentinel: refuse by count (no expected wait)
    with connect_to(port) as conn:
        conn.sendall(request(b"/v1/predict"))
        answer = read_one_response(conn)
    assert answer.startswith(b"HTTP/1.1 503") and b"\r\nretry-after: 1\r\n" in answer
    assert answer.endswith(b'{"detail":"queue full"}')


@pytest.mark.parametrize(
    ("given", "expected"),
    [(b"lb-7f3a:1", "lb-7f3a:1"), (b"not sane!", None)],
    ids=["the client's", "made"],
)
def test_a_refusal_carries_its_request_id_and_logs_it_as_an_access_line(
    given: bytes, expected: str | None
) -> None:
    stream = io.StringIO()
    handler = log_handler(json_lines=True, stream=stream)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    ADMISSION.wait = 5.0
    sent = request(b"/v1/predict").replace(
        b"Host: t\r\n", b"Host: t\r\nX-Request-ID: %s\r\n" % given
    )
    try:
        with (
            on_uvicorn(app, LIMITS, lifespan="on", log_level="info", log_config=None) as running,
            connect_to(running.config.port) as conn,
        ):
            port = f":{conn.getsockname()[1]} - "  # the access line names the client's port
            conn.sendall(sent)
            answer = read_one_response(conn)
    finally:
        access.removeHandler(handler)
        ADMISSION.wait = 0.0
    assert answer.startswith(b"HTTP/1.1 503")
    request_id = answer.lower().split(b"\r\nx-request-id: ")[1].split(b"\r\n")[0].decode()
    assert request_id == expected if expected else re.fullmatch("[0-9a-f]{32}", request_id)
    # Only this request's lines: a server of an earlier test may still log its last refusal.
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ours = [line for line in lines if port in line["message"]]
    assert [(line["request_id"], line["message"].split(" - ")[1]) for line in ours] == [
        (request_id, '"POST /v1/predict HTTP/1.1" 503')
    ]
