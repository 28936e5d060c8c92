"""tuneloop.client on httpx.MockTransport: what it sends, when it sends again, what it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tuneloop.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    Generation,
    NoAnswer,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TuneloopError,
    Unauthorized,
    Unavailable,
    Unprocessable,
    calls,
    clients,
)

PREDICTED = {
    "model_version": "v3",
    "predictions": [{"id": "p1", "label": "positive", "score": 0.9, "scores": {"positive": 0.9}}],
}


def busy() -> httpx.Response:
    return httpx.Response(503, json={"detail": "queue full"}, headers={"Retry-After": "2"})


Answer = httpx.Response | Exception


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds each client slept, instead of sleeping."""
    waits: list[float] = []

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(clients, "sleep", waits.append)
    monkeypatch.setattr(clients, "async_sleep", async_sleep)
    return waits


def served(*answers: Answer) -> tuple[list[httpx.Request], httpx.MockTransport]:
    """A transport that gives `answers` in turn (an exception is raised) and keeps the requests."""
    seen: list[httpx.Request] = []
    left = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = left.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, httpx.MockTransport(handle)


def client(*answers: Answer, **options: Any) -> tuple[list[httpx.Request], Client]:
    seen, transport = served(*answers)
    return seen, Client("http://api", transport=transport, **options)


def test_predict_sends_the_texts_with_the_key_and_reads_typed_predictions(slept) -> None:
    seen, api = client(httpx.Response(200, json=PREDICTED), key="k-123")
    [prediction] = api.predict("I love it")
    assert json.loads(seen[0].content) == {"inputs": ["I love it"]}
    assert seen[0].url == "http://api/v1/predict"
    assert seen[0].headers["authorization"] == "Bearer k-123"
    assert (prediction.id, prediction.label, prediction.model_version) == ("p1", "positive", "v3")
    assert prediction.scores == {"positive": 0.9} and not prediction.truncated


def test_open_mode_sends_no_authorization(slept) -> None:
    seen, api = client(httpx.Response(200, json=PREDICTED))
    api.predict(["a", "b"])
    assert "authorization" not in seen[0].headers


def test_a_busy_api_is_asked_again_after_its_retry_after(slept) -> None:
    seen, api = client(busy(), busy(), httpx.Response(200, json=PREDICTED))
    assert api.predict("x")[0].id == "p1"
    assert len(seen) == 3 and slept == [2.0, 2.0]


def test_retry_after_is_capped_and_read_as_a_date(slept) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    limited = httpx.Response(429, json={"detail": "slow down"}, headers={"Retry-After": later})
    long = httpx.Response(503, headers={"Retry-After": "3600"})
    _, api = client(limited, long, httpx.Response(200, json=PREDICTED), max_retry_wait=10)
    api.predict("x")
    assert slept == [10.0, 10.0]
    assert 15 < calls.retry_after(limited) <= 20  # type: ignore[operator]


def test_retries_run_out_into_the_apis_error(slept) -> None:
    seen, api = client(busy(), busy(), busy(), retries=2)
    with pytest.raises(Unavailable) as raised:
        api.predict("x")
    assert len(seen) == 3 and slept == [2.0, 2.0]
    assert (raised.value.status, raised.value.detail, raised.value.retry_after) == (
        503,
        "queue full",
        2.0,
    )


def test_a_422_is_raised_at_once_with_the_fields_in_its_message(slept) -> None:
    detail = [{"loc": ["body", "inputs"], "msg": "Field required", "type": "missing"}]
    seen, api = client(httpx.Response(422, json={"detail": detail}))
    with pytest.raises(Unprocessable) as raised:
        api.predict("x")
    assert len(seen) == 1 and slept == []
    assert raised.value.detail == detail and "body.inputs: Field required" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (429, RateLimited),
        (500, TuneloopError),
    ],
)
def test_each_status_has_its_error_with_the_apis_detail(slept, status: int, kind: type) -> None:
    _, api = client(httpx.Response(status, json={"detail": "said so"}), retries=0)
    with pytest.raises(kind) as raised:
        api.models()
    assert type(raised.value) is kind and isinstance(raised.value, TuneloopError)
    assert (raised.value.status, raised.value.detail) == (status, "said so")


def test_a_body_that_is_not_json_is_the_detail(slept) -> None:
    _, api = client(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(TuneloopError, match="bad gateway") as raised:
        api.models()
    assert raised.value.status == 502


def test_feedback_keeps_one_idempotency_key_across_retries_and_makes_a_new_one_per_call(
    slept,
) -> None:
    receipt = {"id": "f1", "prediction_id": "p1"}
    refused = httpx.ConnectError("refused")
    seen, api = client(
        busy(), refused, httpx.Response(201, json=receipt), httpx.Response(201, json=receipt)
    )
    assert api.feedback("p1", 1, label="negative").id == "f1"
    api.feedback("p1", 1, label="negative")
    keys = [r.headers["idempotency-key"] for r in seen]
    assert len(set(keys[:3])) == 1 and keys[3] != keys[0]
    assert json.loads(seen[0].content) == {"prediction_id": "p1", "rating": 1, "label": "negative"}


def test_a_given_idempotency_key_is_sent_as_it_is(slept) -> None:
    seen, api = client(httpx.Response(201, json={"id": "f1", "prediction_id": "p1"}))
    api.feedback("p1", 5, preferred_output="better", idempotency_key="mine-1")
    assert seen[0].headers["idempotency-key"] == "mine-1"
    assert json.loads(seen[0].content)["preferred_output"] == "better"


def test_feedback_without_a_key_is_never_sent_twice() -> None:
    call = calls.feedback("p1", 5, {})
    unkeyed = calls.Call(call.method, call.path, call.read, json=call.json, idempotent=False)
    steps = calls.exchange(unkeyed, calls.Retries())
    next(steps)
    with pytest.raises(Unavailable):
        steps.send(busy())


def test_no_connection_is_retried_then_said_in_one_error(slept) -> None:
    refused = httpx.ConnectError("connection refused")
    seen, api = client(refused, refused, refused, refused)
    with pytest.raises(NoAnswer, match="connection refused") as raised:
        api.models()
    assert len(seen) == 4 and slept == [0.5, 1.0, 2.0] and raised.value.status is None


def test_a_read_timeout_is_not_sent_again(slept) -> None:
    seen, api = client(httpx.ReadTimeout("slow"))
    with pytest.raises(NoAnswer):
        api.predict("x")
    assert len(seen) == 1


def test_retrain_answers_the_run_in_flight_and_wait_polls_until_it_ends(slept) -> None:
    run = {"run_id": "r1", "trigger": "manual", "state": "running", "progress": 0.5}
    _, api = client(
        httpx.Response(409, json={"run_id": "r1"}),
        httpx.Response(200, json=run),
        httpx.Response(200, json={**run, "state": "promoted", "version": "v2"}),
    )
    assert api.retrain().model_dump() == {"run_id": "r1", "created": False}
    done = api.wait("r1", poll=3)
    assert (done.state, done.version, done.final) == ("promoted", "v2", True)
    assert slept == [3]


def test_wait_gives_up_after_its_timeout(slept) -> None:
    running = {"run_id": "r/1", "trigger": "manual", "state": "queued"}
    seen, api = client(*[httpx.Response(200, json=running)] * 2)
    with pytest.raises(TimeoutError, match="still queued"):
        api.wait("r/1", timeout=0)
    assert seen[0].url.raw_path == b"/v1/retrain/r%2F1"


def test_models_and_checks_are_typed(slept) -> None:
    version = {"version": "v1", "task": "classification", "status": "champion", "new": 1}
    check = {"id": "c1", "created_at": "2025-01-01T00:00:00+00:00", "drift_detected": True}
    seen, api = client(
        httpx.Response(200, json={"champion": "v1", "serving": "v1", "versions": [version]}),
        httpx.Response(200, json=[check]),
    )
    assert api.models().versions[0].status == "champion"
    [got] = api.checks(limit=5)
    assert got.drift_detected and got.created_at.year == 2025
    assert seen[1].url.params["limit"] == "5"


GENERATED = {
    "model_version": "v1",
    "generations": [
        {
            "id": "g1",
            "text": "Paris.",
            "finish_reason": "stop",
            "prompt_tokens": 7,
            "completion_tokens": 2,
        }
    ],
}
STREAM = (
    'event: start\ndata: {"id": "g1", "model_version": "v1"}\n\n'
    'event: delta\ndata: {"text": "Par"}\n\n'
    'event: delta\ndata: {"text": "is."}\n\n'
    'event: finish\ndata: {"id": "g1", "finish_reason": "stop", "prompt_tokens": 7, '
    '"completion_tokens": 2, "truncated": false}\n\n'
)


def sse(text: str) -> httpx.Response:
    return httpx.Response(200, text=text, headers={"Content-Type": "text/event-stream"})


def test_generate_sends_a_conversation_and_its_decoding(slept) -> None:
    seen, api = client(httpx.Response(200, json=GENERATED))
    answer = api.generate(
        messages=[{"role": "user", "content": "Capital of France?"}],
        max_new_tokens=8,
        stop=("\n",),
        temperature=0.0,
    )
    assert answer == Generation(
        id="g1",
        model_version="v1",
        text="Paris.",
        finish_reason="stop",
        prompt_tokens=7,
        completion_tokens=2,
    )
    sent = json.loads(seen[0].content)
    assert sent == {
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_new_tokens": 8,
        "stop": ["\n"],
        "temperature": 0.0,
    }
    with pytest.raises(TypeError):
        api.generate()


def test_stream_generate_yields_the_deltas_then_the_generation(slept) -> None:
    seen, api = client(busy(), sse(STREAM))
    *deltas, last = api.stream_generate("Capital of France?", max_new_tokens=8)
    assert deltas == ["Par", "is."]
    assert isinstance(last, Generation) and (last.text, last.id, last.model_version) == (
        "Paris.",
        "g1",
        "v1",
    )
    assert json.loads(seen[1].content)["stream"] is True and slept == [2.0]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (STREAM.split("event: finish")[0], NoAnswer),
        (
            'event: start\ndata: {"id": "g1"}\n\nevent: error\ndata: {"detail": "cut"}\n\n',
            Unavailable,
        ),
    ],
)
def test_a_stream_that_breaks_off_raises(slept, body: str, error: type) -> None:
    _, api = client(sse(body))
    with pytest.raises(error):
        list(api.stream_generate("x"))


def async_client(*answers: Answer) -> tuple[list[httpx.Request], AsyncClient]:
    seen, transport = served(*answers)

    async def handle(request: httpx.Request) -> httpx.Response:
        return transport.handle_request(request)

    return seen, AsyncClient("http://api", transport=httpx.MockTransport(handle))


async def test_the_async_client_retries_and_streams_the_same_way(slept) -> None:
    receipt = {"id": "f1", "prediction_id": "g1"}
    seen, api = async_client(
        busy(),
        httpx.Response(200, json=PREDICTED),
        sse(STREAM),
        httpx.ConnectError("refused"),
        httpx.Response(201, json=receipt),
    )
    async with api:
        assert (await api.predict("x"))[0].model_version == "v3"
        parts = [part async for part in api.stream_generate("Capital?")]
        assert parts[:2] == ["Par", "is."] and isinstance(parts[2], Generation)
        assert (await api.feedback("g1", 4, preferred_output="Paris")).id == "f1"
    assert slept == [2.0, 0.5]
    assert seen[3].headers["idempotency-key"] == seen[4].headers["idempotency-key"]


def test_the_client_imports_none_of_the_servers_stack() -> None:
    code = (
        "import sys, tuneloop.client; "
        "print(sorted({'torch', 'transformers', 'fastapi', 'sqlalchemy', 'celery', 'core', 'api'}"
        " & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_canary_answers_arm_reaches_the_caller_and_an_older_api_reads_as_champion(
    slept,
) -> None:
    canary_stream = STREAM.replace(
        '"model_version": "v1"}', '"model_version": "v2", "arm": "canary"}'
    )
    _, api = client(
        httpx.Response(200, json={**PREDICTED, "arm": "canary"}),
        httpx.Response(200, json={**GENERATED, "model_version": "v2", "arm": "canary"}),
        sse(canary_stream),
        httpx.Response(200, json=PREDICTED),  # an api from before canaries names no arm
    )
    [predicted] = api.predict("x")
    assert (predicted.arm, predicted.model_version) == ("canary", "v3")
    generated = api.generate("Capital?")
    assert (generated.arm, generated.model_version) == ("canary", "v2")
    *_, streamed = api.stream_generate("Capital?")
    assert isinstance(streamed, Generation) and (streamed.arm, streamed.model_version) == (
        "canary",
        "v2",
    )
    assert api.predict("x")[0].arm == "champion"
