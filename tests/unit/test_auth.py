"""API keys at the api: 401 without a known key, 403 without the scope, open mode, refresh."""

from __future__ import annotations

import asyncio
import time

from api.auth import KeyRows, KeyTable
from core.keys import Limits, Scope, key_hash
from core.store.db import Database
from core.store.keys import create_key, revoke_key
from core.store.prediction_reads import get_prediction
from tests.unit.calls import bearer, predict_id
from tests.unit.conftest import ADMIN_TOKEN, Client


def test_no_known_key_is_401_and_a_key_without_the_scope_is_403(
    serve: Client, db: Database
) -> None:
    keys = {s: create_key(db, name=s, scopes=[s])[0] for s in Scope}
    revoked, _ = create_key(db, name="old", scopes=list(Scope))
    revoke_key(db, "old")
    client = serve()
    pid = predict_id(client, bearer(keys[Scope.PREDICT]))
    routes = {
        Scope.PREDICT: ("POST", "/v1/predict", {"inputs": "fine"}),
        Scope.FEEDBACK: ("POST", "/v1/feedback", {"prediction_id": pid, "rating": 4}),
        Scope.ADMIN: ("GET", "/v1/retrain", None),
    }
    for scope, (method, path, body) in routes.items():
        for headers in ({}, bearer("tl_unknown"), bearer(revoked), {"Authorization": keys[scope]}):
            answer = client.request(method, path, json=body, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"] == "Bearer"
        for other in set(Scope) - {scope}:
            answer = client.request(method, path, json=body, headers=bearer(keys[other]))
            assert answer.status_code == 403, (path, other)
            assert f'scope="{scope}"' in answer.headers["www-authenticate"]
        answer = client.request(method, path, json=body, headers=bearer(keys[scope]))
        assert answer.status_code in (200, 201), (path, answer.text)
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers=bearer(keys[Scope.PREDICT])).status_code == 200
    assert (
        client.get(f"/v1/predictions/{pid}", headers=bearer(keys[Scope.PREDICT])).status_code == 403
    )
    stored = get_prediction(db, pid)
    assert stored is not None and stored["feedback"][0]["key_name"] == Scope.FEEDBACK


def test_the_admin_token_is_a_key_with_every_scope(serve: Client, db: Database) -> None:
    client = serve()
    admin = bearer(ADMIN_TOKEN)
    pid = predict_id(client, admin)
    assert (
        client.post(
            "/v1/feedback", json={"prediction_id": pid, "rating": 5}, headers=admin
        ).status_code
        == 201
    )
    assert client.get("/v1/retrain", headers=admin).status_code == 200
    assert client.get("/v1/retrain", headers=bearer(ADMIN_TOKEN + "x")).status_code == 401
    stored = get_prediction(db, pid)
    assert stored is not None and stored["feedback"][0]["key_name"] == "admin-token"


def test_a_key_created_or_revoked_while_serving_counts_within_the_refresh(
    serve: Client, db: Database
) -> None:
    client = serve()

    def status_within(key: str, want: int, seconds: float = 2.0) -> float:
        started = time.monotonic()
        while (got := client.get("/v1/models", headers=bearer(key)).status_code) != want:
            assert time.monotonic() - started < seconds, got
            time.sleep(0.01)
        return time.monotonic() - started

    key, _ = create_key(db, name="late", scopes=[Scope.PREDICT])
    status_within(key, 200)
    revoke_key(db, "late")
    status_within(key, 401)


def test_open_mode_ignores_authorization_on_predict_and_feedback_but_not_admin(
    serve: Client, db: Database
) -> None:
    client = serve(open=True)
    bogus = bearer("sk-whatever-the-client-sends")
    for headers in ({}, bogus):
        pid = predict_id(client, headers)
        rated = client.post(
            "/v1/feedback", json={"prediction_id": pid, "rating": 2}, headers=headers
        )
        assert rated.status_code == 201
        assert client.get("/v1/models", headers=headers).status_code == 200
        assert client.get("/v1/retrain", headers=headers).status_code == 401
        assert client.get(f"/v1/predictions/{pid}", headers=headers).status_code == 401
    stored = get_prediction(db, pid)
    assert stored is not None and stored["feedback"][0]["key_name"] is None
    assert client.get("/v1/retrain", headers=bearer(ADMIN_TOKEN)).status_code == 200


def test_open_mode_still_asks_a_reviewers_labels_for_a_review_key(
    serve: Client, db: Database
) -> None:
    # The drill's reviewer runs in open mode with the admin token; anyone else may rate, but
    # only a review key may tag feedback as a reviewer's.
    client = serve(open=True)
    pid = predict_id(client, {})
    body = {"prediction_id": pid, "rating": 1, "label": "negative", "source": "review"}
    assert client.post("/v1/feedback", json=body).status_code == 401
    user, _ = create_key(db, name="user", scopes=[Scope.FEEDBACK])
    assert client.post("/v1/feedback", json=body, headers=bearer(user)).status_code in (401, 403)
    reviewer, _ = create_key(db, name="ann", scopes=[Scope.REVIEW])
    deadline = time.monotonic() + 3.0  # the key table rereads within its refresh
    while (
        status := client.post("/v1/feedback", json=body, headers=bearer(reviewer)).status_code
    ) != 201:
        assert status in (401, 403) and time.monotonic() < deadline, status
        time.sleep(0.02)
    assert client.post("/v1/feedback", json=body, headers=bearer(ADMIN_TOKEN)).status_code == 201
    stored = get_prediction(db, pid)
    assert stored is not None
    assert [(f["source"], f["key_name"]) for f in stored["feedback"]] == [
        ("review", "ann"),
        ("review", "admin-token"),
    ]


def test_health_metrics_and_docs_stay_open_and_openapi_shows_the_scheme(serve: Client) -> None:
    client = serve()
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 200, path
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, method in (
        ("/v1/predict", "post"),
        ("/v1/generate", "post"),
        ("/v1/chat/completions", "post"),
        ("/v1/feedback", "post"),
        ("/v1/retrain", "get"),
        ("/v1/models", "get"),
    ):
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"apiKey": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
        assert ("429" in operation["responses"]) == (path != "/v1/retrain"), path
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert "401" not in spec["paths"]["/metrics"]["get"]["responses"]


def test_the_key_table_keeps_what_it_knew_while_the_store_fails() -> None:
    rows: list[KeyRows | Exception] = [
        {key_hash("tl_a"): ("a", frozenset({"predict"}), Limits(requests=3))}
    ]

    def read() -> KeyRows:
        last = rows[-1]
        if isinstance(last, Exception):
            raise last
        return last

    table = KeyTable(read, admin_token=None, refresh_seconds=1.0)
    asyncio.run(table.refresh())
    rows.append(RuntimeError("store down"))
    asyncio.run(table.refresh())
    caller = table.caller("tl_a")
    assert caller is not None and caller.name == "a" and table.caller("tl_b") is None
    assert caller.limits == Limits(requests=3)
    rows.append({})
    asyncio.run(table.refresh())
    assert table.caller("tl_a") is None
