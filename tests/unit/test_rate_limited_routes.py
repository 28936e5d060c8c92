"""Rate limits at the api: 429 with Retry-After for a limited key on predict, generation and
feedback; never for an unlimited key, the admin token or open mode; changes within the refresh."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core.keys import Limits, Scope
from core.store.db import Database
from core.store.keys import create_key, limit_key
from tests.unit.calls import bearer, predict_id
from tests.unit.conftest import ADMIN_TOKEN, Client

PREDICT_FEEDBACK = [Scope.PREDICT, Scope.FEEDBACK]


def routes(pid: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "predict": ("/v1/predict", {"inputs": "fine"}),
        "generate": ("/v1/generate", {"inputs": "hello"}),
        "chat": (
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        ),
        "feedback": ("/v1/feedback", {"prediction_id": pid, "rating": 4}),
    }


def test_a_limited_key_is_answered_429_with_retry_after_on_every_limited_route(
    serve: Client, db: Database
) -> None:
    free, _ = create_key(db, name="free", scopes=PREDICT_FEEDBACK)
    # One request each 2 s (burst 1), one key per route: the request bucket is the key's.
    slow = {
        route: create_key(db, name=f"slow-{route}", scopes=PREDICT_FEEDBACK, limits=Limits(0.5))[0]
        for route in ("predict", "generate", "chat", "feedback")
    }
    client = serve()
    pid = predict_id(client, bearer(free))
    for route, (path, body) in routes(pid).items():
        first = client.post(path, json=body, headers=bearer(slow[route]))
        assert first.status_code != 429, (route, first.text)  # the classifier: 409 on generation
        second = client.post(path, json=body, headers=bearer(slow[route]))
        assert second.status_code == 429, route
        assert second.headers["retry-after"] == "2"
        assert second.json() == {
            "detail": f"API key slow-{route} is over its limit of 0.5 requests/s"
        }
        for headers in (bearer(free), bearer(ADMIN_TOKEN)):
            for _ in range(3):
                assert client.post(path, json=body, headers=headers).status_code != 429, route
    metrics = client.get("/metrics").text
    for route in slow:
        assert (
            f'tuneloop_api_rate_limited_total{{key="slow-{route}",limit="requests"}} 1.0' in metrics
        )


def test_texts_are_counted_per_input_and_a_full_bucket_passes_the_largest_request(
    serve: Client, db: Database
) -> None:
    # 2 texts/s; max_inputs 8, so the burst is 8 texts (the largest request always passes).
    key, _ = create_key(db, name="texts", scopes=PREDICT_FEEDBACK, limits=Limits(texts=2))
    client = serve(max_inputs=8)
    headers = bearer(key)
    assert (
        client.post("/v1/predict", json={"inputs": ["a"] * 9}, headers=headers).status_code == 422
    )
    assert (
        client.post("/v1/predict", json={"inputs": ["a"] * 8}, headers=headers).status_code == 200
    )
    refused = client.post("/v1/predict", json={"inputs": ["a", "b"]}, headers=headers)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == "API key texts is over its limit of 2 texts/s"
    generated = client.post("/v1/generate", json={"inputs": ["a", "b"]}, headers=headers)
    assert generated.status_code == 429  # each prompt is a text, charged before it starts
    rated = client.post(
        "/v1/feedback", json={"prediction_id": "none", "rating": 4}, headers=headers
    )
    assert rated.status_code == 404  # feedback carries no texts
    assert 'key="texts",limit="texts"} 2.0' in client.get("/metrics").text


def test_a_limit_set_or_cleared_while_serving_counts_within_the_refresh(
    serve: Client, db: Database
) -> None:
    key, _ = create_key(db, name="later", scopes=PREDICT_FEEDBACK)
    client = serve()

    def limited_within(want: bool, seconds: float = 2.0) -> None:
        deadline = time.monotonic() + seconds
        while (
            client.post("/v1/predict", json={"inputs": "x"}, headers=bearer(key)).status_code == 429
        ) != want:
            assert time.monotonic() < deadline
            time.sleep(0.01)

    limited_within(False)
    limit_key(db, "later", requests=0.2)
    limited_within(True)
    limit_key(db, "later", requests=None)
    limited_within(False)


def test_open_mode_has_no_key_and_so_no_limit(serve: Client, db: Database) -> None:
    key, _ = create_key(db, name="limited", scopes=PREDICT_FEEDBACK, limits=Limits(0.1, 0.1))
    client: TestClient = serve(open=True)
    for _ in range(3):
        answer = client.post("/v1/predict", json={"inputs": "x"}, headers=bearer(key))
        assert answer.status_code == 200
