"""Generation served in process on a tiny Llama: routes, streaming, limits, feedback, keys."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from api.app import create_app
from core.keys import Limits, Scope
from core.registry import Registry
from core.runtime.textgen import load_generation
from core.settings import ApiSettings, Settings
from core.store.db import Database
from core.store.keys import create_key
from core.store.prediction_reads import get_prediction
from tests.generators import tiny_llama
from tests.unit.calls import events


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("gen") / "llama", context=128)


@contextmanager
def serve_llama(
    tmp_path: Path, sqlite_url: str, llama: Path, *, open: bool
) -> Iterator[TestClient]:
    """The tiny Llama as champion of a running app, in open mode or not."""
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        admin_token="t" * 20,
        api=ApiSettings(
            model_poll_seconds=0.05,
            log_flush_seconds=0.05,
            max_new_tokens=64,
            max_stop=2,
            open=open,
        ),
    )
    registry = Registry(Database(sqlite_url), settings.artifacts)
    staged = registry.staging_dir()
    shutil.copytree(llama, staged, dirs_exist_ok=True)
    registry.promote(
        registry.register(staged, task="generation", labels=[], base_model="tiny").version
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield client


@pytest.fixture
def client(tmp_path: Path, sqlite_url: str, llama: Path) -> Iterator[TestClient]:
    """Open mode, as `make run` serves."""
    with serve_llama(tmp_path, sqlite_url, llama, open=True) as client:
        yield client


@pytest.fixture
def keyed(
    tmp_path: Path, sqlite_url: str, llama: Path
) -> Iterator[tuple[TestClient, dict[Scope, dict[str, str]]]]:
    """Keys required; the headers of a key with each one scope."""
    db = Database(sqlite_url)
    keys = {s: create_key(db, name=s, scopes=[s])[0] for s in Scope}
    with serve_llama(tmp_path, sqlite_url, llama, open=False) as client:
        yield client, {s: {"Authorization": f"Bearer {k}"} for s, k in keys.items()}


def solo_greedy(llama: Path, prompt: str, n: int) -> str:
    """What `model.generate` alone answers, greedily, to one templated prompt."""
    gen = load_generation(llama, version="ref", device="cpu")
    ids = gen.encode(text=prompt)
    out = gen.model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    tokens = [t for t in out[0, len(ids) :].tolist() if t != gen.tokenizer.eos_token_id]
    return str(gen.tokenizer.decode(tokens, skip_special_tokens=True))


def test_generate_answers_each_prompt_as_greedy_decoding_alone_would(
    client: TestClient, llama: Path
) -> None:
    prompts = ["the quick brown fox", "what is the capital of france?", "one two three"]
    answer = client.post("/v1/generate", json={"inputs": prompts, "max_new_tokens": 12})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "v1"
    for prompt, gen in zip(prompts, body["generations"], strict=True):
        assert gen["text"] == solo_greedy(llama, prompt, 12)
        assert gen["finish_reason"] in ("stop", "length")
        assert gen["prompt_tokens"] > 0 and 0 < gen["completion_tokens"] <= 12
        assert gen["truncated"] is False


def test_a_generation_is_logged_and_takes_a_preferred_output_not_a_label(
    client: TestClient,
) -> None:
    gen = client.post("/v1/generate", json={"inputs": "red green", "max_new_tokens": 5}).json()
    pid = gen["generations"][0]["id"]
    given = client.post(
        "/v1/feedback", json={"prediction_id": pid, "rating": 2, "preferred_output": "blue"}
    )
    assert given.status_code == 201, given.text
    labeled = client.post("/v1/feedback", json={"prediction_id": pid, "rating": 1, "label": "x"})
    assert labeled.status_code == 422 and "preferred_output" in labeled.text
    db = client.app.state.db  # type: ignore[attr-defined]
    stored = get_prediction(db, pid)
    assert stored is not None and stored["task"] == "generation"
    assert stored["input"] == "red green"
    assert stored["output"]["text"] == gen["generations"][0]["text"]
    assert stored["output"]["finish_reason"] == gen["generations"][0]["finish_reason"]
    assert stored["feedback"][0]["preferred_output"] == "blue"


def test_stream_sends_the_id_first_then_deltas_then_the_finish(client: TestClient) -> None:
    whole = client.post("/v1/generate", json={"inputs": "one two", "max_new_tokens": 10}).json()
    streamed = client.post(
        "/v1/generate", json={"inputs": "one two", "max_new_tokens": 10, "stream": True}
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    got = events(streamed.text)
    assert got[0][0] == "start" and json.loads(got[0][1])["model_version"] == "v1"
    assert got[-1][0] == "finish"
    deltas = "".join(json.loads(d)["text"] for name, d in got if name == "delta")
    assert deltas == whole["generations"][0]["text"]
    finish = json.loads(got[-1][1])
    assert finish["finish_reason"] == whole["generations"][0]["finish_reason"]
    assert finish["id"] == json.loads(got[0][1])["id"]


def test_stop_strings_cut_the_text_and_end_with_stop(client: TestClient) -> None:
    free = client.post("/v1/generate", json={"inputs": "the fox", "max_new_tokens": 30}).json()
    text = free["generations"][0]["text"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), text
    cut = client.post(
        "/v1/generate", json={"inputs": "the fox", "max_new_tokens": 30, "stop": [stop]}
    ).json()["generations"][0]
    assert cut["text"] == text[: text.find(stop)]
    assert cut["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"inputs": "x", "max_new_tokens": 65}, "between 1 and 64"),
        ({"inputs": "x", "max_new_tokens": 0}, "between 1 and 64"),
        ({"inputs": "x", "stop": ["a", "b", "c"]}, "at most 2 stop"),
        ({"inputs": "x", "temperature": 3}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": ""}]}, "content"),
        ({"inputs": "x", "messages": [{"role": "user", "content": "hi"}]}, "exactly one"),
        ({"inputs": "word " * 2000, "max_new_tokens": 8}, "this model takes at most 120"),
        ({"inputs": ["a", "b"], "stream": True}, "stream takes one prompt"),
        ({"messages": [{"role": "user", "content": "a" * 10_001}]}, "longer than 10000"),
    ],
)
def test_bad_generation_input_is_a_clear_422(
    client: TestClient, body: dict[str, object], needle: str
) -> None:
    answer = client.post("/v1/generate", json=body)
    assert answer.status_code == 422, answer.text
    assert needle in answer.text


def test_predict_on_a_generator_is_a_409_that_names_the_route(client: TestClient) -> None:
    answer = client.post("/v1/predict", json={"inputs": "x"})
    assert answer.status_code == 409 and "/v1/generate" in answer.text


def test_chat_completions_answers_in_openai_shape_with_the_prediction_id(
    client: TestClient, llama: Path
) -> None:
    answer = client.post(
        "/v1/chat/completions",
        json={
            "model": "anything",
            "messages": [{"role": "user", "content": "one two three"}],
            "max_tokens": 8,
            "temperature": 0,
            "logit_bias": {},  # an OpenAI field tuneloop does not implement: ignored
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "anything"
    assert body["choices"][0]["message"]["content"] == solo_greedy(llama, "one two three", 8)
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    rated = client.post("/v1/feedback", json={"prediction_id": body["id"], "rating": 5})
    assert rated.status_code == 201, rated.text
    two = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "n": 2}
    )
    assert two.status_code == 422
    tool = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "tool", "content": "x"}]}
    )
    assert tool.status_code == 422 and "role" in tool.text


def test_generation_routes_need_a_key_with_the_predict_scope(
    keyed: tuple[TestClient, dict[Scope, dict[str, str]]],
) -> None:
    client, headers = keyed
    chat = {"messages": [{"role": "user", "content": "one"}], "max_tokens": 3}
    for path, body in (
        ("/v1/generate", {"inputs": "one", "max_new_tokens": 3}),
        ("/v1/chat/completions", chat),
    ):
        missing = client.post(path, json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert client.post(path, json=body, headers=headers[Scope.FEEDBACK]).status_code == 403
        answer = client.post(path, json=body, headers=headers[Scope.PREDICT])
        assert answer.status_code == 200, answer.text
    pid = answer.json()["id"]
    rating = {"prediction_id": pid, "rating": 5}
    assert (
        client.post("/v1/feedback", json=rating, headers=headers[Scope.PREDICT]).status_code == 403
    )
    assert (
        client.post("/v1/feedback", json=rating, headers=headers[Scope.FEEDBACK]).status_code == 201
    )
    stored = get_prediction(client.app.state.db, pid)  # type: ignore[attr-defined]
    assert stored is not None and stored["feedback"][0]["key_name"] == "feedback"


def test_open_mode_ignores_the_key_openai_clients_always_send(client: TestClient) -> None:
    bogus = {"Authorization": "Bearer sk-no-key-needed"}
    chat = {"messages": [{"role": "user", "content": "one"}], "max_tokens": 3}
    answer = client.post("/v1/chat/completions", json=chat, headers=bogus)
    assert answer.status_code == 200, answer.text
    rating = {"prediction_id": answer.json()["id"], "rating": 5}
    assert client.post("/v1/feedback", json=rating, headers=bogus).status_code == 201
    assert client.get("/v1/retrain", headers=bogus).status_code == 401


def test_a_key_over_its_request_limit_gets_429_on_generation(
    tmp_path: Path, sqlite_url: str, llama: Path
) -> None:
    limits = Limits(requests=0.5)  # one request each 2 s
    key, _ = create_key(Database(sqlite_url), name="slow", scopes=[Scope.PREDICT], limits=limits)
    headers = {"Authorization": f"Bearer {key}"}
    chat = {"messages": [{"role": "user", "content": "one"}], "max_tokens": 3}
    with serve_llama(tmp_path, sqlite_url, llama, open=False) as client:
        answer = client.post(
            "/v1/generate", json={"inputs": "one", "max_new_tokens": 3}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        refused = client.post("/v1/chat/completions", json=chat, headers=headers)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert refused.json() == {"detail": "API key slow is over its limit of 0.5 requests/s"}


def test_an_empty_list_of_prompts_is_a_422_not_a_server_error(client: TestClient) -> None:
    answer = client.post("/v1/generate", json={"inputs": []})
    assert answer.status_code == 422, answer.text
