"""Any text through predict, generate and feedback: never a 5xx, a 2xx or a 4xx that says why.

Bodies are sent raw, JSON-escaped (`ensure_ascii`), so lone surrogates arrive as `\\ud800`, the
way a client's JSON encoder writes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzzing import ADMIN_TOKEN, build
from tests.generators import tiny_llama

# Every code point: surrogates (Cs), NUL and controls, RTL and zero-width format characters.
TEXTS = st.text(st.characters(exclude_categories=()), max_size=64)
NASTY = ["\x00", "\ud800", "a\udfffb", "\u202eabc", "\u200b\u200d\ufeff", "\u0627\u0644\u0639"]
MEGABYTE = "x" * 1_000_000
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
BOUNDED = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def started(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from started(build(tmp_path_factory.mktemp("cls")))


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("gen")
    (home / "app").mkdir()
    llama = tiny_llama(home / "llama", context=128)
    yield from started(build(home / "app", generator=llama))


def post(client: TestClient, path: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body, ensure_ascii=True).encode()
    return client.post(path, content=raw, headers=HEADERS)


def assert_clear(answer: httpx.Response, *ok: int) -> None:
    """A 2xx in `ok`, or a 413/422 whose JSON says why; never a 5xx."""
    assert answer.status_code in (*ok, 413, 422), (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert answer.json()["detail"], answer.text[:300]


@BOUNDED
@given(text=TEXTS)
@example(text=MEGABYTE)
@pytest.mark.parametrize("nasty", NASTY)
def test_predict_takes_any_text(classifier: TestClient, nasty: str, text: str) -> None:
    for inputs in (text, [text, nasty]):
        answer = post(classifier, "/v1/predict", {"inputs": inputs})
        assert_clear(answer, 200)
        if answer.status_code == 200:
            count = 1 if isinstance(inputs, str) else len(inputs)
            assert len(answer.json()["predictions"]) == count


@BOUNDED
@given(text=TEXTS)
@example(text="\ud800")
@example(text=MEGABYTE)
def test_feedback_takes_any_text(classifier: TestClient, text: str) -> None:
    predicted = post(classifier, "/v1/predict", {"inputs": "a fine text"}).json()
    prediction_id = predicted["predictions"][0]["id"]
    for body in (
        {"prediction_id": prediction_id, "rating": 4, "comment": text},
        {"prediction_id": prediction_id, "rating": 1, "label": text},
        {"prediction_id": prediction_id, "rating": 5, "preferred_output": text},
        {"prediction_id": text, "rating": 3},
    ):
        assert_clear(post(classifier, "/v1/feedback", body), 201, 404)


@BOUNDED
@given(text=TEXTS)
@example(text="\x00")
@example(text="\ud800")
@example(text="\u202e\u200b")
@example(text=MEGABYTE)
def test_generate_takes_any_text(generator: TestClient, text: str) -> None:
    for path, body in (
        ("/v1/generate", {"inputs": text, "max_new_tokens": 1}),
        ("/v1/generate", {"inputs": text, "raw": True, "max_new_tokens": 1, "stop": [text]}),
        ("/v1/generate", {"messages": [{"role": "user", "content": text}], "max_new_tokens": 1}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": text}], "max_tokens": 1},
        ),
    ):
        assert_clear(post(generator, path, body), 200)
