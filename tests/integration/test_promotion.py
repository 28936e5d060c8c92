"""A corrupt artifact over HTTP: promotion refuses it, and the old champion keeps serving."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.registry import Registry, flip_champion
from core.store.db import Database, upgrade
from tests.factories import register_champion, register_corrupt
from tests.integration.server import TOKEN, serving, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Served:
    base: str
    registry: Registry
    env: dict[str, str]
    log: Path


@pytest.fixture
def served(tmp_path: Path, fresh_postgres_url: str, base_artifact: Path) -> Iterator[Served]:
    """A real api serving the tiny model as v1, polling the store for a new champion quickly."""
    upgrade(fresh_postgres_url)
    db = Database(fresh_postgres_url)
    registry = register_champion(db, tmp_path / "artifacts", base_artifact)
    env = tuneloop_env(
        tmp_path, fresh_postgres_url, TUNELOOP_API_MODEL_POLL_SECONDS=str(POLL_SECONDS)
    )
    try:
        with serving(env, tmp_path / "api.log") as base:
            yield Served(base=base, registry=registry, env=env, log=tmp_path / "api.log")
    finally:
        db.dispose()


def served_version(base: str) -> str:
    """The version that answers a prediction; fails unless the answer is a 200."""
    response = httpx.post(f"{base}/v1/predict", json={"inputs": "good product"}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def test_promoting_a_corrupt_artifact_is_refused_and_the_champion_stays(
    served: Served, base_artifact: Path
) -> None:
    assert served_version(served.base) == "v1"
    register_corrupt(served.registry, base_artifact)

    refused = httpx.post(f"{served.base}/v1/models/v2/promote", headers=ADMIN, timeout=120)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith("v2 does not load:")
    unknown = httpx.post(f"{served.base}/v1/models/v9/promote", headers=ADMIN, timeout=30)
    assert unknown.status_code == 404

    cli = subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "models", "promote", "v2"],
        env=served.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode != 0 and "not promoted: v2 does not load" in cli.stderr, cli.stderr

    champion = served.registry.champion()
    assert champion is not None and champion.version == "v1"
    assert served.registry.get("v2").status == "candidate"
    assert httpx.get(f"{served.base}/v1/models").json()["champion"] == "v1"
    assert served_version(served.base) == "v1"


def test_a_corrupt_champion_flipped_in_the_store_is_skipped_while_v1_serves(
    served: Served, base_artifact: Path
) -> None:
    assert served_version(served.base) == "v1"
    register_corrupt(served.registry, base_artifact)
    with served.registry.db.session() as session:  # as an operator or a script might
        flip_champion(session, "v2")

    # Ten poll intervals and ten answers at least, however slowly a busy CPU answers.
    deadline = time.monotonic() + 10 * POLL_SECONDS
    answered = 0
    while time.monotonic() < deadline or answered < 10:
        assert served_version(served.base) == "v1"
        answered += 1
    ready = httpx.get(f"{served.base}/readyz").json()
    assert ready == {"status": "ready", "model_version": "v1"}

    # One load tried and logged over ten polls: the broken version is not reloaded every poll.
    log = served.log.read_text()
    assert log.count("Error while deserializing header") == 1, log
    assert "could not load champion v2; still serving v1" in log
    assert "Exception in ASGI application" not in log
