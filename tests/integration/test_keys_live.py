"""API keys through a real `tuneloop serve` out of open mode: a key made and revoked by the real
CLI is honoured and then refused by the running api within its refresh interval (5 s at most)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.store.db import Database, upgrade
from tests.factories import register_champion
from tests.integration.server import run_cli, serving, tuneloop_env

VISIBLE_WITHIN = 5.0  # the bound on a new or revoked key reaching every replica


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, base_artifact: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, env) of a served tiny classifier that needs keys."""
    home = tmp_path_factory.mktemp("keys-home")
    env = tuneloop_env(home, f"sqlite:///{home / 'tuneloop.db'}", TUNELOOP_API_OPEN="false")
    upgrade(env["TUNELOOP_DATABASE_URL"])
    db = Database(env["TUNELOOP_DATABASE_URL"])
    register_champion(db, home / "artifacts", base_artifact)
    db.dispose()
    with serving(env, home / "api.log") as base:
        yield base, env


def _until(answer: Callable[[], int], status: int) -> float:
    """Seconds until `answer()` gives `status`; fails past the bound."""
    start = time.monotonic()
    while (got := answer()) != status:
        assert time.monotonic() - start < VISIBLE_WITHIN, f"still {got}, wanted {status}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_key_made_by_the_cli_is_honoured_for_its_scope_then_refused_once_revoked(
    keyed: tuple[str, dict[str, str]],
) -> None:
    base, env = keyed
    assert httpx.post(f"{base}/v1/predict", json={"inputs": ["hi"]}).status_code == 401
    key = run_cli("keys", "create", "--name", "app", "--scopes", "predict", env=env)
    key = key.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}

    def predict() -> int:
        return httpx.post(f"{base}/v1/predict", json={"inputs": ["hi"]}, headers=auth).status_code

    _until(predict, 200)
    answer = httpx.post(f"{base}/v1/predict", json={"inputs": ["hi"]}, headers=auth).json()
    feedback = {"prediction_id": answer["predictions"][0]["id"], "rating": 5}
    assert httpx.post(f"{base}/v1/feedback", json=feedback, headers=auth).status_code == 403
    assert key not in (Path(env["TUNELOOP_HOME"]) / "api.log").read_text()
    listed = run_cli("keys", "list", env=env)
    assert "app" in listed and key not in listed

    run_cli("keys", "revoke", "app", env=env)
    _until(predict, 401)
