"""Generation through a real `tuneloop serve`: the real `openai` client, streaming, disconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.generators import tiny_llama
from tests.integration.server import run_cli, serving, tuneloop_env


@pytest.fixture(scope="module")
def gen_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served tiny Llama, registered by the real `tuneloop init --task generation`."""
    home = tmp_path_factory.mktemp("gen-home")
    model = tiny_llama(home / "tiny-llama", context=512)
    env = tuneloop_env(
        home, f"sqlite:///{home / 'tuneloop.db'}", TUNELOOP_API_LOG_FLUSH_SECONDS="0.05"
    )
    out = run_cli("init", "--task", "generation", "--model", str(model), env=env)
    assert "created v1: causal generator" in out, out
    with serving(env, home / "api.log") as base:
        yield base


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_the_openai_client_gets_a_completion_whose_id_takes_feedback(gen_api: str) -> None:
    answer = client(gen_api).chat.completions.create(
        model="whatever",
        messages=[{"role": "user", "content": "the quick brown fox"}],
        max_tokens=8,
        temperature=0,
    )
    assert answer.model == "whatever"
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 8
    assert isinstance(answer.choices[0].message.content, str)
    given = httpx.post(
        f"{gen_api}/v1/feedback",
        json={"prediction_id": answer.id, "rating": 4, "preferred_output": "jumps"},
    )
    assert given.status_code == 201, given.text


def test_the_openai_client_streams_the_same_text(gen_api: str) -> None:
    ask = {
        "model": "m",
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": 12,
        "temperature": 0,
    }
    whole = client(gen_api).chat.completions.create(**ask)  # type: ignore[call-overload]
    chunks = list(
        client(gen_api).chat.completions.create(
            **ask, stream=True, stream_options={"include_usage": True}
        )  # type: ignore[call-overload]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason and set(finishes[:-1]) == {None}
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert len({c.id for c in chunks}) == 1


def test_a_client_that_disconnects_has_its_sequence_cancelled(gen_api: str) -> None:
    body = {"inputs": "red green blue", "max_new_tokens": 480, "stream": True, "temperature": 1.0}
    with httpx.stream("POST", f"{gen_api}/v1/generate", json=body, timeout=30) as response:
        lines = response.iter_lines()
        first = next(lines)
        assert first == "event: start"
    # The connection is closed after one event: the server must log the generation cancelled.
    deadline = time.monotonic() + 20
    while True:
        metrics = httpx.get(f"{gen_api}/metrics").text
        if 'tuneloop_api_generations_total{finish_reason="cancelled"' in metrics:
            break
        assert time.monotonic() < deadline, "the sequence was not cancelled"
        time.sleep(0.2)


def test_generation_metrics_are_exported(gen_api: str) -> None:
    httpx.post(f"{gen_api}/v1/generate", json={"inputs": "one", "max_new_tokens": 4})
    metrics = httpx.get(f"{gen_api}/metrics").text
    for name in (
        "tuneloop_api_generated_tokens_total",
        "tuneloop_api_time_to_first_token_seconds_bucket",
        "tuneloop_api_output_tokens_bucket",
    ):
        assert name in metrics, name
