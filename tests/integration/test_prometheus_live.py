"""A real Prometheus scrapes a real api on loopback while a real worker retrains: every query of
every dashboard panel and every rule parses and returns data.

The api serves a tiny classifier; the test drives predictions, feedback, a monitor check and a
retrain that promotes v2, then asks Prometheus' HTTP API for each expression (template variables
filled in, alert expressions without their threshold). A wrong metric or label name returns
nothing and fails. Queries of CUDA-only metrics are exempt where the api runs without a GPU; the
queries of generation metrics are asserted on a generation stack
(`test_prometheus_generation_live`).
"""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.store.db import Database, upgrade
from tests.factories import register_champion, sentence
from tests.integration.prometheus import (
    CUDA_ONLY,
    PANELS,
    RULES,
    WHILE_CANARY,
    WHILE_OVERLOADED,
    Stack,
    of_generation,
    prometheus,
    rules_are_healthy,
)
from tests.integration.server import FAST_TRAINING, TOKEN, launch, serving, stop, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LABELS = ["negative", "positive"]
TEXTS = 240  # labeled feedback enough for a golden set of 100 and a holdout of 20+
SETTINGS = {
    "TUNELOOP_MONITOR_WINDOW_SIZE": "20",
    "TUNELOOP_MONITOR_REFERENCE_SIZE": "20",
    "TUNELOOP_API_MODEL_POLL_SECONDS": "0.5",
    **FAST_TRAINING,
    # Admission by queue length only: a contended CPU must not shed the fixture's own traffic.
    "TUNELOOP_API_QUEUE_DEADLINE_SECONDS": "0",
}
CLASSIFIER_PANELS = [(w, e) for w, e in PANELS if not of_generation(e)]
CLASSIFIER_RULES = [(n, e) for n, e in RULES if not of_generation(e)]


def _register_v1(url: str, artifacts: Path, artifact: Path) -> None:
    upgrade(url)
    db = Database(url)
    register_champion(db, artifacts, artifact)
    db.dispose()


def _rate(client: httpx.Client, texts: list[str], truth: list[str]) -> None:
    """Predict the texts, then rate each answer and correct its label."""
    predictions = []
    for start in range(0, len(texts), 60):
        r = client.post("/v1/predict", json={"inputs": texts[start : start + 60]})
        assert r.status_code == 200, r.text
        predictions += r.json()["predictions"]
    for p, label in zip(predictions, truth, strict=True):
        rating = 5 if p["label"] == label else 1
        body = {"prediction_id": p["id"], "rating": rating, "label": label}
        assert client.post("/v1/feedback", json=body).status_code == 201


def _drive(stack: Stack) -> None:
    """Predictions and feedback, a bad request, a monitor check, then a retrain."""
    rng = random.Random(0)
    truth = [rng.choice(LABELS) for _ in range(TEXTS)]
    texts = [f"{sentence(label, rng)} {i}" for i, label in enumerate(truth)]
    with httpx.Client(base_url=stack.api, timeout=120) as client:
        # The api creates a label set's series at its first event; Prometheus must see it
        # before the bulk, or rate() misses the bulk (its first sample already holds it).
        _rate(client, texts[:4], truth[:4])
        stack.wait_for("tuneloop_api_feedback_total", timeout=60)
        stack.wait_for("count_over_time(tuneloop_api_feedback_total[1m]) >= 2")
        _rate(client, texts[4:], truth[4:])
        assert client.post("/v1/predict", json={"inputs": []}).status_code == 422
        # The check first: once v2 is promoted, v1's windows are no longer the champion's.
        check = client.post("/v1/monitor/check", headers=ADMIN)
        assert check.status_code == 200, check.text
        assert check.json()["drift_share"] is not None, check.json()  # reference and window
        # The check may have queued a run already (the random champion is below the floors).
        r = client.post("/v1/retrain", headers=ADMIN)
        assert r.status_code in (202, 409), r.text
        run_id = r.json()["run_id"]
        deadline = time.monotonic() + 120
        while (run := client.get(f"/v1/retrain/{run_id}", headers=ADMIN).json())["state"] not in (
            "promoted",
            "rejected",
            "failed",
        ):
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert run["state"] == "promoted", run


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, base_artifact: Path) -> Iterator[Stack]:
    """Api + worker + Prometheus with the repo's rules, after the loop ran once."""
    home = tmp_path_factory.mktemp("live")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}", **SETTINGS)
    _register_v1(env["TUNELOOP_DATABASE_URL"], home / "artifacts", base_artifact)
    worker = launch([sys.executable, "-m", "tuneloop.cli", "worker"], home / "worker.log", env)
    try:
        with serving(env, home / "api.log") as api, prometheus(home, api) as stack:
            _drive(stack)
            stack.cuda = "tuneloop_api_gpu_memory_bytes{" in httpx.get(f"{api}/metrics").text
            # The promotion and the swap are scraped, and the rules have evaluated since.
            stack.wait_for("max(tuneloop_retrain_champion_version) == 2")
            stack.wait_for('tuneloop_api_model_info{version="v2"}')
            stack.wait_for("changes(max(tuneloop_retrain_champion_version)[1m:]) > 0")
            stack.wait_for("count_over_time(tuneloop:api_error_ratio:rate5m[1m]) > 2")
            yield stack
    finally:
        stop(worker, signal.SIGKILL)  # idle, and its state is in the store: no need to wait


@pytest.mark.parametrize(
    ("where", "expr"), CLASSIFIER_PANELS, ids=[w for w, _ in CLASSIFIER_PANELS]
)
def test_every_panel_query_returns_data(stack: Stack, where: str, expr: str) -> None:
    if not stack.cuda and any(m in expr for m in CUDA_ONLY):
        pytest.skip("CUDA-only metric on an api without a GPU")
    if any(m in expr for m in WHILE_CANARY + WHILE_OVERLOADED):  # neither happens here
        stack.assert_series(where, expr)
    else:
        stack.assert_data(where, expr)


@pytest.mark.parametrize(("name", "expr"), CLASSIFIER_RULES, ids=[n for n, _ in CLASSIFIER_RULES])
def test_every_rule_returns_data(stack: Stack, name: str, expr: str) -> None:
    stack.assert_data(name, expr)


def test_rules_load_and_evaluate_without_errors(stack: Stack) -> None:
    rules_are_healthy(stack)


def test_the_api_is_scraped_and_the_check_and_the_run_show(stack: Stack) -> None:
    assert stack.query('up{job="tuneloop-api"} == 1')
    assert stack.query("max(tuneloop_monitor_last_check_timestamp_seconds) > 0")
    assert stack.query('max(tuneloop_retrain_verdicts{verdict="promote"}) == 1')
    assert stack.query("max(tuneloop_retrain_run_duration_seconds_count) == 1")
    assert stack.query(f'sum(tuneloop_api_feedback_total{{model_version="v1"}}) == {TEXTS}')
