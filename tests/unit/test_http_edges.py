"""HTTP edge cases an attacker or a flaky network brings: each answered without a 5xx."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.deps import get_db, get_registry
from core.logs import log_handler
from core.registry import Registry
from core.settings import ApiSettings
from core.store.db import Database
from tests.unit.conftest import ADMIN_TOKEN, Client


def open_mode(serve: Client, **api: Any) -> TestClient:
    """The app in open mode, as `make run` serves it."""
    return serve(open=True, **api)


async def _half_sent(app: FastAPI, path: str) -> list[dict[str, Any]]:
    """POST a body's first bytes, then hang up; what the app sent back."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"inpu', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "app": app,
    }
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/feedback", "/v1/generate"])
def test_a_client_gone_mid_body_is_a_499_in_the_metrics_not_a_500(
    serve: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = open_mode(serve)
    app = client.app
    assert isinstance(app, FastAPI)
    assert client.portal is not None
    sent = client.portal.call(_half_sent, app, path)
    assert sent == []  # nobody to answer
    metrics = client.get("/metrics").text
    assert f'route="{path}",status="499"' in metrics
    assert f'route="{path}",status="500"' not in metrics
    assert not [r for r in caplog.records if r.exc_info]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _down_store(kind: str, tmp_path: Path) -> Database:
    """A store that cannot be reached: PostgreSQL on a closed port, or SQLite on a folder."""
    if kind == "postgres":
        return Database(f"postgresql+psycopg://tuneloop@127.0.0.1:{_closed_port()}/tuneloop")
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    return Database(f"sqlite:///{folder}")


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_feedback_and_models_answer_503_with_retry_after_while_the_store_is_down(
    serve: Client, tmp_path: Path, kind: str
) -> None:
    client = open_mode(serve, retry_after_seconds=7)
    app = client.app
    assert isinstance(app, FastAPI)
    down = _down_store(kind, tmp_path)
    app.dependency_overrides[get_db] = lambda: down
    app.dependency_overrides[get_registry] = lambda: Registry(down, tmp_path / "artifacts")
    for method, path, body in [
        ("POST", "/v1/feedback", {"prediction_id": "p1", "rating": 5}),
        ("GET", "/v1/models", None),
    ]:
        answer = client.request(method, path, json=body)
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"detail": "store unavailable"}
        assert answer.headers["Retry-After"] == "7"
    app.dependency_overrides.clear()
    assert client.get("/v1/models").status_code == 200  # back by itself


def test_an_idempotency_key_reused_with_another_body_is_a_422_the_same_body_replays(
    serve: Client,
) -> None:
    client = open_mode(serve)
    pid = client.post("/v1/predict", json={"inputs": "fine"}).json()["predictions"][0]["id"]
    key = {"Idempotency-Key": "once"}
    body = {"prediction_id": pid, "rating": 5, "comment": "good"}
    first = client.post("/v1/feedback", json=body, headers=key)
    again = client.post("/v1/feedback", json=dict(reversed(body.items())), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    for changed in ({"rating": 1}, {"comment": "bad"}, {"comment": None}, {"label": "negative"}):
        refused = client.post("/v1/feedback", json={**body, **changed}, headers=key)
        assert refused.status_code == 422, changed
        assert "different body" in refused.json()["detail"]
    stored = client.get(
        f"/v1/predictions/{pid}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert [f["rating"] for f in stored.json()["feedback"]] == [5]


BLANKS = ["", " \t\n", "\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\x01\x7f", "\u2028", "\u3164"]


def test_texts_of_only_zero_width_or_control_characters_are_blank_422_everywhere(
    serve: Client,
) -> None:
    client = open_mode(serve)
    assert client.post("/v1/predict", json={"inputs": "ok\u200b"}).status_code == 200
    for blank in BLANKS:
        for path, body in [
            ("/v1/predict", {"inputs": blank}),
            ("/v1/predict", {"inputs": ["fine", blank]}),
            ("/v1/generate", {"inputs": blank}),
            ("/v1/generate", {"messages": [{"role": "user", "content": blank}]}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": blank}]}),
            ("/v1/feedback", {"prediction_id": "p", "rating": 5, "preferred_output": blank}),
            ("/v1/feedback", {"prediction_id": "p", "rating": 5, "label": blank}),
        ]:
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, body, answer.text)


def test_head_answers_on_health_readiness_and_metrics_without_a_body(serve: Client) -> None:
    client = open_mode(serve)
    for path in ("/healthz", "/readyz", "/metrics"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
    operations = client.get("/openapi.json").json()["paths"]["/readyz"]
    assert set(operations) == {"get", "head"}
    assert operations["get"]["operationId"] != operations["head"]["operationId"]


def test_no_redirect_takes_its_host_from_a_forged_host_header(serve: Client) -> None:
    client = open_mode(serve)
    forged = {"Host": "evil.example"}
    for method, path in [("GET", "/healthz/"), ("GET", "/v1/models/"), ("POST", "/v1/predict/")]:
        answer = client.request(method, path, headers=forged, follow_redirects=False)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "location" not in answer.headers


def test_every_answer_carries_a_request_id_the_clients_when_sane_else_a_new_one(
    serve: Client,
) -> None:
    client = open_mode(serve, max_body_bytes=1024)
    given = "req-1:abc.DEF_2/3=+@"
    for method, path, body in [
        ("GET", "/healthz", None),
        ("POST", "/v1/predict", {"inputs": "fine"}),  # the fast path
        ("POST", "/v1/predict", {"inputs": ""}),  # 422
        ("POST", "/v1/feedback", {"prediction_id": "x" * 2000, "rating": 5}),  # 413
        ("GET", "/nowhere", None),  # 404
    ]:
        echoed = client.request(method, path, json=body, headers={"X-Request-ID": given})
        assert echoed.headers["X-Request-ID"] == given, path
        made = {client.request(method, path, json=body).headers["X-Request-ID"] for _ in "ab"}
        assert len(made) == 2 and all(len(m) == 32 for m in made), path
    for insane in ("x" * 129, "two words", "a;b", "<script>"):
        answer = client.get("/healthz", headers={"X-Request-ID": insane})
        assert answer.headers["X-Request-ID"] != insane
        assert len(answer.headers["X-Request-ID"]) == 32
    app = client.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[get_db] = lambda: None  # a bug: the route fails with a 500
    failing = TestClient(app, raise_server_exceptions=False)
    answer = failing.post(
        "/v1/feedback", json={"prediction_id": "p", "rating": 5}, headers={"X-Request-ID": given}
    )
    assert answer.status_code == 500 and answer.json() == {"detail": "internal server error"}
    assert answer.headers["X-Request-ID"] == given


def test_log_lines_are_json_objects_naming_the_request_they_were_written_in(
    serve: Client, tmp_path: Path
) -> None:
    client = open_mode(serve)
    app = client.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[get_db] = lambda: _down_store("sqlite", tmp_path)  # it logs why
    lines = io.StringIO()
    handler = log_handler(json_lines=True, stream=lines)
    logger = logging.getLogger("api")
    logger.addHandler(handler)
    try:
        client.post(
            "/v1/feedback", json={"prediction_id": "p", "rating": 5}, headers={"X-Request-ID": "r1"}
        )
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in lines.getvalue().splitlines())
    assert inside["request_id"] == "r1" and inside["logger"] == "api.errors"
    assert inside["level"] == "WARNING" and "store unavailable" in inside["message"]
    assert set(inside) == {"time", "level", "logger", "message", "request_id"}
    assert "request_id" not in outside and outside["message"] == "outside any request"


def test_cors_is_off_by_default_and_allows_exactly_the_origins_set(serve: Client) -> None:
    app_origin, other = "https://app.example.com", "https://evil.example"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }

    def ask(client: TestClient, origin: str) -> tuple[Any, Any]:
        options = client.options("/v1/predict", headers={"Origin": origin, **preflight})
        simple = client.post("/v1/predict", json={"inputs": "fine"}, headers={"Origin": origin})
        return options, simple

    for answer in ask(open_mode(serve), app_origin):
        assert "access-control-allow-origin" not in answer.headers
    options, simple = ask(
        open_mode(serve, cors_origins=f"{app_origin}, http://localhost:3000"), app_origin
    )
    assert options.status_code == 200
    assert options.headers["access-control-allow-origin"] == app_origin
    assert "authorization" in options.headers["access-control-allow-headers"].lower()
    assert simple.status_code == 200 and simple.headers["access-control-allow-origin"] == app_origin
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    refused, simple = ask(open_mode(serve, cors_origins=app_origin), other)
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("origin", ["https://app.example.com/", "app.example.com", "https://a/b"])
def test_a_cors_origin_with_a_path_or_without_a_scheme_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="scheme://host"):
        ApiSettings(cors_origins=f"http://localhost:3000,{origin}")
