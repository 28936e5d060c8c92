"""A real Prometheus scrapes a real api serving a tiny generator: every dashboard query and rule
on generation metrics parses and returns data.

The test streams and completes generations, rates them low with preferred outputs, and runs a
monitor check; the api's generation counters, latency histograms and the check's output and
ROUGE-L figures must reach each panel and rule of the Generation dashboard. The length-cut
alert compares with the deployment's share of the day before: a day of generation counters is
backfilled into the TSDB with `promtool` first, so that baseline is a real query result too.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.generators import tiny_llama
from tests.integration.prometheus import PANELS, RULES, Stack, of_generation, prometheus
from tests.integration.server import TOKEN, run_cli, serving, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PROMPTS = ["the quick brown fox", "red green blue", "one two three", "what is the capital"]
RATED = 8  # at least TUNELOOP_MONITOR_MIN_FEEDBACK: the rating-drop alert judges on that many
SETTINGS = {
    "TUNELOOP_MONITOR_MIN_FEEDBACK": "4",
    "TUNELOOP_API_LOG_FLUSH_SECONDS": "0.05",
}
GENERATION_PANELS = [(w, e) for w, e in PANELS if of_generation(e)]
GENERATION_RULES = [(n, e) for n, e in RULES if of_generation(e)]


def _backfill(tsdb: Path, now: float) -> None:
    """Yesterday's generations, none cut by length: 26 h to 1 h ago, one sample a minute."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool ships with prometheus"
    series = 'tuneloop_api_generations_total{job="tuneloop-api",instance="yesterday",'
    series += 'model_version="v0",finish_reason="stop"}'
    start, end = int(now) - 26 * 3600, int(now) - 3600
    lines = [
        "# HELP tuneloop_api_generations Generations.",
        "# TYPE tuneloop_api_generations counter",
    ]
    lines += [f"{series} {i} {t}" for i, t in enumerate(range(start, end, 60))]
    source = tsdb.parent / "yesterday.om"
    source.write_text("\n".join([*lines, "# EOF", ""]))
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _generate(client: openai.OpenAI, base: str, prompt: str) -> list[str]:
    """One streamed /v1/generate and one chat completion; their prediction ids."""
    body = {"inputs": prompt, "max_new_tokens": 6, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{base}/v1/generate", json=body, timeout=60) as response:
        assert response.status_code == 200
        events = list(response.iter_lines())
    assert "event: finish" in events, events
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], max_tokens=6, temperature=0
    )
    start = next(e for e in events if e.startswith("data:") and '"id"' in e)
    return [httpx.Response(200, content=start[5:]).json()["id"], answer.id]


def _rate_low(base: str, ids: list[str]) -> None:
    """Poor ratings, each with the output the user wanted instead."""
    for i in ids:
        body = {"prediction_id": i, "rating": 1, "preferred_output": "paris is the capital"}
        r = httpx.post(f"{base}/v1/feedback", json=body, timeout=30)
        assert r.status_code == 201, r.text


def _drive(stack: Stack) -> None:
    """Generations and low ratings (a few first, so Prometheus has the series before the bulk),
    then a monitor check."""
    client = openai.OpenAI(base_url=f"{stack.api}/v1", api_key="unused", max_retries=0)
    _rate_low(stack.api, _generate(client, stack.api, PROMPTS[0]))
    stack.wait_for("tuneloop_api_generations_total", timeout=60)
    stack.wait_for("count_over_time(tuneloop_api_feedback_rating_count[1m]) >= 2")
    ids = [i for n in range(RATED // 2) for i in _generate(client, stack.api, PROMPTS[n % 4])]
    _rate_low(stack.api, ids)
    check = httpx.post(f"{stack.api}/v1/monitor/check", headers=ADMIN, timeout=120)
    assert check.status_code == 200, check.text
    assert check.json()["quality"]["rouge_l"] is not None, check.json()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A served tiny Llama scraped by Prometheus, after generations, ratings and a check."""
    home = tmp_path_factory.mktemp("gen-live")
    model = tiny_llama(home / "tiny-llama", context=512)
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}", **SETTINGS)
    assert "created v1" in run_cli("init", "--task", "generation", "--model", str(model), env=env)
    (home / "tsdb").mkdir()
    _backfill(home / "tsdb", time.time())
    with serving(env, home / "api.log") as api, prometheus(home, api) as stack:
        _drive(stack)
        # The check's figures are scraped, and the rules on the new counters have evaluated.
        stack.wait_for("max(tuneloop_monitor_rouge_l) >= 0")
        stack.wait_for("model_version:tuneloop_api_length_cut_ratio:rate30m")
        stack.wait_for("model_version:tuneloop_api_feedback_rating:count1h >= 4")
        yield stack


@pytest.mark.parametrize(
    ("where", "expr"), GENERATION_PANELS, ids=[w for w, _ in GENERATION_PANELS]
)
def test_every_generation_panel_query_returns_data(stack: Stack, where: str, expr: str) -> None:
    stack.assert_data(where, expr)


@pytest.mark.parametrize(("name", "expr"), GENERATION_RULES, ids=[n for n, _ in GENERATION_RULES])
def test_every_generation_rule_returns_data(stack: Stack, name: str, expr: str) -> None:
    stack.assert_data(name, expr)


def test_the_backfilled_day_is_the_baseline_and_nothing_was_cut_then(stack: Stack) -> None:
    baseline = stack.query("tuneloop:api_length_cut_ratio:rate1d_offset30m")
    assert [float(s["value"][1]) for s in baseline] == [0.0]
