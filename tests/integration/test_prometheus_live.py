"""A real Prometheus scrapes a real api on loopback while a real worker retrains: every query of
every dashboard panel and every rule parses and returns data.

The api serves a tiny model; the test drives predictions, feedback, a monitor check and a retrain
that promotes v2, then asks Prometheus' HTTP API for each expression (template variables filled
in, alert expressions without their threshold). A wrong metric or label name returns nothing and
fails. Queries of CUDA-only metrics are exempt where the api runs without a GPU, and queries of
generation metrics here, where the champion is a classifier.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.store.db import Database, upgrade
from grafana.build import expressions
from grafana.generate import DASHBOARDS
from tests.factories import register_champion, sentence
from tests.integration.server import TOKEN, free_port, serving, tuneloop_env

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LABELS = ["negative", "positive"]
TEXTS = 240  # labeled feedback enough for a golden set of 100 and a holdout of 20+
VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$model_version": ".*", "$feature": ".*"}
CUDA_ONLY = ("tuneloop_api_gpu_memory_bytes",)
# What only a generation champion fills (its serving metrics, its check's figures, the alerts on
# them); this stack serves a classifier.
GENERATION_ONLY = (
    "tuneloop_api_generated_tokens_total",
    "tuneloop_api_time_to_first_token_seconds",
    "tuneloop_api_inter_token_seconds",
    "tuneloop_api_generations_total",
    "tuneloop_api_output_tokens",
    "length_cut_ratio",
    "tuneloop_monitor_rouge_l",
    "tuneloop_monitor_output_",
    'task="generation"',
)
GENERATION_RULES = {
    "TuneloopGenerationsCutByLength",
    "TuneloopGenerationRatingDrop",
    "model_version:tuneloop_api_length_cut_ratio:rate30m",
    "tuneloop:api_length_cut_ratio:rate1d_offset30m",
}
THRESHOLD = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e-?\d+)?")
SETTINGS = {
    "TUNELOOP_MONITOR_WINDOW_SIZE": "20",
    "TUNELOOP_MONITOR_REFERENCE_SIZE": "20",
    "TUNELOOP_API_MODEL_POLL_SECONDS": "0.5",
    "TUNELOOP_RETRAIN_METHOD": "full",
    "TUNELOOP_RETRAIN_EPOCHS": "4",
    "TUNELOOP_RETRAIN_MIN_STEPS": "0",
    "TUNELOOP_RETRAIN_LEARNING_RATE": "0.001",
    "TUNELOOP_RETRAIN_GOLDEN_SIZE": "100",
    "TUNELOOP_RETRAIN_MIN_HOLDOUT": "20",
    "TUNELOOP_RETRAIN_TORCH_THREADS": "1",
    "TUNELOOP_WORKER_CONCURRENCY": "1",
}


def _rules() -> list[tuple[str, str]]:
    """(name, expression) of every rule; an alert's without its threshold comparison."""
    found = []
    for path in sorted((ROOT / "prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append((rule["alert"], THRESHOLD.sub("", rule["expr"])))
                else:
                    found.append((rule["record"], rule["expr"]))
    return found


def _panels() -> list[tuple[str, str]]:
    """(where, expression) of every dashboard query with its template variables filled in."""
    found = []
    for build in DASHBOARDS.values():
        for where, expr in expressions(build()):
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            found.append((where, expr))
    return found


RULES = _rules()
PANELS = _panels()


def prometheus_binary() -> str:
    """The Prometheus server; skip without it on a user's machine, fail under CI."""
    path = shutil.which("prometheus")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("prometheus is missing under CI (apt-get install prometheus)")
    pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")


@dataclass
class Stack:
    """The running api and Prometheus, and what the api exposed."""

    api: str
    prometheus: str
    cuda: bool

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; fails on a parse or evaluation error."""
        r = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _register_v1(url: str, artifacts: Path, artifact: Path) -> None:
    upgrade(url)
    db = Database(url)
    register_champion(db, artifacts, artifact)
    db.dispose()


def _launch(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process and its children (the worker forks its pool)."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _prometheus_config(home: Path, api: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "prometheus/rules/*.yml")],
        "scrape_configs": [
            {"job_name": "tuneloop-api", "static_configs": [{"targets": [api.split("//")[1]]}]}
        ],
    }
    path = home / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


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
        _wait_for(stack, "tuneloop_api_feedback_total", timeout=60)
        _wait_for(stack, "count_over_time(tuneloop_api_feedback_total[1m]) >= 2")
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


def _wait_ready(
    stack: Stack, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    """Until Prometheus answers /-/ready (a cold start opens its port after a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"Prometheus exited: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"{stack.prometheus}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"Prometheus not ready: {log.read_text()[-2000:]}"
        time.sleep(0.2)


def _wait_for(stack: Stack, expr: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not stack.query(expr):
        assert time.monotonic() < deadline, f"Prometheus never saw {expr}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, base_artifact: Path) -> Iterator[Stack]:
    """Api + worker + Prometheus with the repo's rules, after the loop ran once."""
    binary = prometheus_binary()
    home = tmp_path_factory.mktemp("live")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}", **SETTINGS)
    _register_v1(env["TUNELOOP_DATABASE_URL"], home / "artifacts", base_artifact)
    worker = _launch([sys.executable, "-m", "tuneloop.cli", "worker"], home / "worker.log", env)
    procs = [worker]
    try:
        with serving(env, home / "api.log") as api:
            port = free_port()
            procs.append(
                _launch(
                    [
                        binary,
                        f"--config.file={_prometheus_config(home, api)}",
                        f"--storage.tsdb.path={home / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    home / "prometheus.log",
                )
            )
            stack = Stack(api=api, prometheus=f"http://127.0.0.1:{port}", cuda=False)
            _wait_ready(stack, procs[-1], home / "prometheus.log")
            _drive(stack)
            stack.cuda = "tuneloop_api_gpu_memory_bytes{" in httpx.get(f"{api}/metrics").text
            # The promotion and the swap are scraped, and the rules have evaluated since.
            _wait_for(stack, "max(tuneloop_retrain_champion_version) == 2")
            _wait_for(stack, 'tuneloop_api_model_info{version="v2"}')
            _wait_for(stack, "changes(max(tuneloop_retrain_champion_version)[1m:]) > 0")
            _wait_for(stack, "count_over_time(tuneloop:api_error_ratio:rate5m[1m]) > 2")
            yield stack
    finally:
        _stop(worker, signal.SIGKILL)  # idle, and its state is in the store: no need to wait
        for proc in procs[1:]:
            _stop(proc)


@pytest.mark.parametrize(("where", "expr"), PANELS, ids=[w for w, _ in PANELS])
def test_every_panel_query_returns_data(stack: Stack, where: str, expr: str) -> None:
    if not stack.cuda and any(m in expr for m in CUDA_ONLY):
        pytest.skip("CUDA-only metric on an api without a GPU")
    _skip_generation_only(expr)
    result = stack.query(expr)
    assert result, f"{where}: no data for {expr}"
    assert [s for s in result if s["value"][1] != "NaN"], f"{where}: only NaN for {expr}"


@pytest.mark.parametrize(("name", "expr"), RULES, ids=[n for n, _ in RULES])
def test_every_rule_returns_data(stack: Stack, name: str, expr: str) -> None:
    if name in GENERATION_RULES:
        pytest.skip("a rule on generations, and this api serves a classifier")
    result = stack.query(expr)
    assert result, f"{name}: no data for {expr}"
    assert [s for s in result if s["value"][1] != "NaN"], f"{name}: only NaN for {expr}"


def _skip_generation_only(expr: str) -> None:
    if any(m in expr for m in GENERATION_ONLY):  # only panels of the Generation dashboard
        pytest.skip("generation metric on an api serving a classifier")


def test_rules_load_and_evaluate_without_errors(stack: Stack) -> None:
    groups = httpx.get(f"{stack.prometheus}/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(RULES)
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]


def test_the_api_is_scraped_and_the_check_and_the_run_show(stack: Stack) -> None:
    assert stack.query('up{job="tuneloop-api"} == 1')
    assert stack.query("max(tuneloop_monitor_last_check_timestamp_seconds) > 0")
    assert stack.query('max(tuneloop_retrain_verdicts{verdict="promote"}) == 1')
    assert stack.query("max(tuneloop_retrain_run_duration_seconds_count) == 1")
    assert stack.query(f'sum(tuneloop_api_feedback_total{{model_version="v1"}}) == {TEXTS}')
