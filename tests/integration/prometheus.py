"""A real Prometheus with the repo's rules scraping a served api: the harness of the live checks.

Every dashboard query and every rule is split by what fills it: the classifier stack
(`test_prometheus_live`) answers the queries of serving, feedback, checks and runs, and the
generation stack (`test_prometheus_generation_live`) the queries of generation metrics. So each
expression is asserted on the stack that can fill it, and none is skipped for the other's sake.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from grafana.board import expressions
from grafana.generate import DASHBOARDS
from tests.integration.server import launch, stop
from tuneloop.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$model_version": ".*", "$feature": ".*"}
CUDA_ONLY = ("tuneloop_api_gpu_memory_bytes",)
# Exported NaN until a canary (or shadow) has items: their series must exist, their value may not.
WHILE_CANARY = (
    "tuneloop_canary_metric",
    "tuneloop_canary_shadow_agreement",
    "tuneloop_canary_shadow_rouge_l",
)
# Observed only when the api refuses in the protocol (overload, the connection bound), which the
# live stacks never provoke: series must exist, values may be NaN (tests/unit/test_shedding.py).
WHILE_OVERLOADED = ("tuneloop_api_protocol_refusal_seconds",)
# What only a generation champion fills: its serving metrics, its check's figures, their rules.
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
THRESHOLD = re.compile(r"\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?-?\d+(?:\.\d+)?(?:e-?\d+)?")


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


def of_generation(expr: str) -> bool:
    """Whether only a generation champion's api and checks fill this expression."""
    return any(m in expr for m in GENERATION_ONLY)


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
    cuda: bool = False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; fails on a parse or evaluation error."""
        r = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 30) -> None:
        """Until the query returns something."""
        deadline = time.monotonic() + timeout
        while not self.query(expr):
            assert time.monotonic() < deadline, f"Prometheus never saw {expr}"
            time.sleep(0.5)

    def assert_data(self, where: str, expr: str) -> None:
        """The expression returns at least one series that is not NaN."""
        result = self.query(expr)
        assert result, f"{where}: no data for {expr}"
        assert [s for s in result if s["value"][1] != "NaN"], f"{where}: only NaN for {expr}"

    def assert_series(self, where: str, expr: str) -> None:
        """The expression returns at least one series (NaN allowed): its names are right."""
        assert self.query(expr), f"{where}: no series for {expr}"


def _config(home: Path, api: str) -> Path:
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


@contextmanager
def prometheus(home: Path, api: str) -> Iterator[Stack]:
    """A Prometheus on a free port scraping `api` every second, its TSDB at `home/tsdb`."""
    binary = prometheus_binary()
    port = free_port()
    log = home / "prometheus.log"
    proc = launch(
        [
            binary,
            f"--config.file={_config(home, api)}",
            f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log,
    )
    try:
        stack = Stack(api=api, prometheus=f"http://127.0.0.1:{port}")
        _wait_ready(stack, proc, log)
        yield stack
    finally:
        stop(proc)


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


def rules_are_healthy(stack: Stack) -> None:
    """Every rule file loaded, and every rule evaluates without an error."""
    groups = httpx.get(f"{stack.prometheus}/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(RULES)
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
