"""The served api end to end over HTTP, on SQLite and on PostgreSQL, with the default model."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.server import TOKEN

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def predict(api: str, inputs: object) -> httpx.Response:
    return httpx.post(f"{api}/v1/predict", json={"inputs": inputs}, timeout=30)


def test_default_zero_shot_model_gets_clear_sentiment_right(api: str) -> None:
    response = predict(
        api, ["I love it, works perfectly", "Broke after one day, total waste of money"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "v1"
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative"]
    for p in body["predictions"]:
        assert set(p["scores"]) == {"negative", "positive"}
        assert p["score"] == max(p["scores"].values()) and p["truncated"] is False


def test_a_single_string_is_one_prediction(api: str) -> None:
    body = predict(api, "great product").json()
    assert len(body["predictions"]) == 1 and body["predictions"][0]["id"]


def test_feedback_on_a_fresh_id_is_committed_and_readable(api: str) -> None:
    pid = predict(api, "It stopped working, I want a refund").json()["predictions"][0]["id"]
    # Sent at once: the record may still be in the replica's buffer, and must not get a 404.
    sent = httpx.post(
        f"{api}/v1/feedback",
        json={"prediction_id": pid, "rating": 1, "label": "negative", "comment": "wrong"},
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["prediction_id"] == pid
    stored = httpx.get(f"{api}/v1/predictions/{pid}", headers=ADMIN).json()
    assert stored["input"] == "It stopped working, I want a refund"
    assert stored["feedback"][0]["rating"] == 1 and stored["feedback"][0]["label"] == "negative"


def test_idempotency_key_replay_returns_the_same_id(api: str) -> None:
    pid = predict(api, "fine").json()["predictions"][0]["id"]
    body = {"prediction_id": pid, "rating": 5}
    first = httpx.post(f"{api}/v1/feedback", json=body, headers={"Idempotency-Key": pid})
    again = httpx.post(f"{api}/v1/feedback", json=body, headers={"Idempotency-Key": pid})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    stored = httpx.get(f"{api}/v1/predictions/{pid}", headers=ADMIN).json()
    assert len(stored["feedback"]) == 1


def test_feedback_errors(api: str) -> None:
    pid = predict(api, "ok").json()["predictions"][0]["id"]
    unknown = httpx.post(f"{api}/v1/feedback", json={"prediction_id": "nope", "rating": 3})
    assert unknown.status_code == 404
    bad_label = httpx.post(
        f"{api}/v1/feedback", json={"prediction_id": pid, "rating": 1, "label": "neutral"}
    )
    assert bad_label.status_code == 422 and "neutral" in str(bad_label.json()["detail"])
    for rating in (0, 6, "5", 2.5, None):
        r = httpx.post(f"{api}/v1/feedback", json={"prediction_id": pid, "rating": rating})
        assert r.status_code == 422, rating


BAD_BODIES: list[tuple[str, bytes]] = [
    ("empty list", b'{"inputs": []}'),
    ("empty text", b'{"inputs": ""}'),
    ("whitespace text", b'{"inputs": ["ok", "  \\n\\t "]}'),
    ("number", b'{"inputs": 5}'),
    ("list of numbers", b'{"inputs": [1, 2]}'),
    ("missing inputs", b"{}"),
    ("unknown field", b'{"inputs": "x", "extra": 1}'),
    ("too many inputs", ('{"inputs": [' + ",".join(['"a"'] * 65) + "]}").encode()),
    ("text over the character limit", ('{"inputs": "' + "a" * 10_001 + '"}').encode()),
    ("not json", b"this is not json"),
    ("invalid utf-8", b'{"inputs": "caf\xe9 \xff"}'),
    ("NUL byte", b'{"inputs": "a\\u0000b"}'),
    ("lone surrogate", b'{"inputs": "a\\ud800b"}'),
    ("empty body", b""),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_bad_predict_input_gets_a_clear_422(api: str, case: str, body: bytes) -> None:
    response = httpx.post(
        f"{api}/v1/predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, (case, response.text)
    assert response.json()["detail"]


def test_bodies_over_the_size_limit_get_413_declared_or_chunked(api: str) -> None:
    big = b'{"inputs": "' + b"a" * (1 << 20) + b'"}'
    declared = httpx.post(f"{api}/v1/predict", content=big)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    chunked = httpx.post(f"{api}/v1/predict", content=chunks())
    assert chunked.status_code == 413


def test_texts_over_the_token_limit_are_truncated_and_flagged(api: str) -> None:
    body = predict(api, ["short one", "good product " * 400]).json()
    assert [p["truncated"] for p in body["predictions"]] == [False, True]


def test_admin_routes_need_the_token(api: str) -> None:
    pid = predict(api, "ok").json()["predictions"][0]["id"]
    assert httpx.get(f"{api}/v1/predictions/{pid}").status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert httpx.get(f"{api}/v1/predictions/{pid}", headers=wrong).status_code == 401
    assert httpx.get(f"{api}/v1/predictions/{pid}", headers=ADMIN).status_code == 200
    assert httpx.get(f"{api}/v1/predictions/unknown", headers=ADMIN).status_code == 404


def test_open_routes(api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api}/readyz").json()["model_version"] == "v1"
    models = httpx.get(f"{api}/v1/models").json()
    assert models["champion"] == "v1" and models["versions"][0]["labels"] == [
        "negative",
        "positive",
    ]
    assert "/v1/predict" in httpx.get(f"{api}/openapi.json").json()["paths"]
    assert httpx.get(f"{api}/docs").status_code == 200


def test_metrics_count_requests_predictions_and_feedback(api: str) -> None:
    predict(api, "lovely")
    text = httpx.get(f"{api}/metrics").text
    assert 'tuneloop_api_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'tuneloop_api_predictions_total{label="positive",model_version="v1"}' in text
    assert 'tuneloop_api_model_info{task="classification",version="v1"} 1.0' in text
    assert "tuneloop_api_batch_size_bucket" in text
    assert "tuneloop_api_log_dropped_total" in text
    assert 'tuneloop_api_requests_total{method="POST",route="/v1/predict",status="422"}' in text


def test_bad_bodies_are_never_echoed_into_the_server_log(
    api: str, request: pytest.FixtureRequest
) -> None:
    marker = "SECRET-BODY-MARKER-7f3a"
    httpx.post(f"{api}/v1/predict", content=f'{{"inputs": 5, "x": "{marker}"}}'.encode())
    httpx.post(f"{api}/v1/predict", content=f"not json {marker}".encode())
    home = request.getfixturevalue("api_home")
    assert marker not in (home / "api.log").read_text()
