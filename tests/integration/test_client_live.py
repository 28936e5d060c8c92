"""tuneloop.client against a real `tuneloop serve` in open mode: a tiny classifier and a tiny
generator, each through the blocking and the async client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store.db import Database, upgrade
from tests.factories import register_champion
from tests.generators import tiny_llama
from tests.integration.server import TOKEN, run_cli, serving, tuneloop_env
from tuneloop.client import (
    AsyncClient,
    Client,
    Conflict,
    Generation,
    NotFound,
    Unauthorized,
    Unprocessable,
)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory, base_artifact: Path) -> Iterator[str]:
    """Base URL of a served tiny negative/positive classifier."""
    home = tmp_path_factory.mktemp("client-classifier")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
    upgrade(env["TUNELOOP_DATABASE_URL"])
    db = Database(env["TUNELOOP_DATABASE_URL"])
    register_champion(db, home / "artifacts", base_artifact)
    db.dispose()
    with serving(env, home / "api.log") as base:
        yield base


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a served tiny Llama, registered by the real `tuneloop init`."""
    home = tmp_path_factory.mktemp("client-generator")
    model = tiny_llama(home / "tiny-llama", context=512)
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}")
    assert "created v1" in run_cli("init", "--task", "generation", "--model", str(model), env=env)
    with serving(env, home / "api.log") as base:
        yield base


def test_a_classifier_predicts_takes_feedback_once_and_answers_admin_calls(classifier: str) -> None:
    with Client(classifier) as api:
        first, second = api.predict(["I love it", "Broke after one day"])
        assert first.model_version == second.model_version == "v1"
        assert {first.label, second.label} <= {"negative", "positive"}
        receipt = api.feedback(first.id, 1, label="negative", idempotency_key="client-live-1")
        again = api.feedback(first.id, 1, label="negative", idempotency_key="client-live-1")
        assert again.id == receipt.id and receipt.prediction_id == first.id
        with pytest.raises(Unprocessable, match="label"):
            api.feedback(second.id, 1, label="no-such-label")
        with pytest.raises(NotFound):
            api.feedback("no-such-prediction", 5)
        models = api.models()
        assert models.champion == models.serving == "v1"
        assert models.versions[0].task == "classification"
        with pytest.raises(Unauthorized):
            api.checks()  # admin routes need a key even in open mode
    with Client(classifier, key=TOKEN) as admin:
        assert admin.checks(limit=5) == []
        queued = admin.retrain()
        assert queued.created and admin.retrain().run_id == queued.run_id
        assert admin.run(queued.run_id).state == "queued"  # no worker runs here
        with pytest.raises(TimeoutError, match="still queued"):
            admin.wait(queued.run_id, timeout=0.5, poll=0.2)
        with pytest.raises(NotFound):
            admin.run("no-such-run")


async def test_the_async_client_predicts_and_rates_on_a_classifier(classifier: str) -> None:
    async with AsyncClient(classifier) as api:
        [prediction] = await api.predict("fine")
        receipt = await api.feedback(prediction.id, 5, label=prediction.label)
        assert receipt.prediction_id == prediction.id
        assert (await api.models()).champion == "v1"


def test_a_generator_generates_streams_the_same_text_and_takes_a_preferred_output(
    generator: str,
) -> None:
    with Client(generator) as api:
        whole = api.generate("one two three", max_new_tokens=12, temperature=0.0)
        assert whole.finish_reason in ("stop", "length") and 0 < whole.completion_tokens <= 12
        *deltas, last = api.stream_generate("one two three", max_new_tokens=12, temperature=0.0)
        assert isinstance(last, Generation) and all(isinstance(d, str) for d in deltas)
        assert "".join(deltas) == last.text == whole.text
        assert last.id != whole.id and last.model_version == "v1"
        chat = api.generate(messages=[{"role": "user", "content": "hello"}], max_new_tokens=4)
        for generation in (whole, last, chat):
            receipt = api.feedback(generation.id, 2, preferred_output="four five six")
            assert receipt.prediction_id == generation.id
        with pytest.raises(Conflict):
            api.predict("a generator does not classify")
        with pytest.raises(Unprocessable, match="max_new_tokens"):
            api.generate("x", max_new_tokens=10**6)


async def test_the_async_client_generates_and_streams_on_a_generator(generator: str) -> None:
    async with AsyncClient(generator) as api:
        whole = await api.generate("red green", max_new_tokens=8)
        parts = [p async for p in api.stream_generate("red green", max_new_tokens=8)]
        *deltas, last = parts
        assert isinstance(last, Generation) and "".join(map(str, deltas)) == last.text == whole.text
        assert (await api.feedback(last.id, 5)).prediction_id == last.id
