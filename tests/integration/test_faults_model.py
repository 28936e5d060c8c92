"""A champion whose artifact does not load when the api starts: the process comes up (health
200), readiness answers 503 `broken` with the reason, predictions 503, and a good version promoted
later is served without a restart.

Why not refuse to start: an orchestrator would restart it in a loop and the fix (a promotion or a
rollback in the store) could never reach it; a 503 on readiness keeps it out of a load balancer
while it says why. That promoting such a version is refused, and that a replica already serving
keeps serving when the alias is flipped to one, is in tests/integration/test_promotion.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from core.registry import Registry
from core.store.db import Database, upgrade
from tests.factories import register_corrupt
from tests.integration.faults import wait_until
from tests.integration.server import TOKEN, serving, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def test_an_api_whose_champion_does_not_load_starts_says_why_and_heals_on_promotion(
    tmp_path: Path, base_artifact: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'tuneloop.db'}"
    upgrade(url)
    db = Database(url)
    registry = Registry(db, tmp_path / "artifacts")
    broken = register_corrupt(registry, base_artifact)
    registry.promote(broken.version)  # unchecked, as an older release or a script might
    env = tuneloop_env(tmp_path, url, TUNELOOP_API_MODEL_POLL_SECONDS="0.5")
    try:
        with serving(env, tmp_path / "api.log", until="/healthz") as base:
            ready = httpx.get(f"{base}/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "broken"
            assert ready.json()["detail"].startswith(f"champion {broken.version} does not load: ")
            assert httpx.head(f"{base}/readyz").status_code == 503
            predicted = httpx.post(f"{base}/v1/predict", json={"inputs": ["good"]})
            assert predicted.status_code == 503 and predicted.json()["detail"] == "model not ready"

            staged = registry.staging_dir()
            shutil.copytree(base_artifact, staged, dirs_exist_ok=True)
            good = registry.register(
                staged,
                task="classification",
                labels=["negative", "positive"],
                base_model="tiny-bert",
            )
            promoted = httpx.post(f"{base}/v1/models/{good.version}/promote", headers=ADMIN)
            assert promoted.status_code == 200, promoted.text
            wait_until(
                lambda: httpx.get(f"{base}/readyz").status_code == 200,
                timeout=30,
                what="the promoted version to be served",
            )
            assert httpx.get(f"{base}/readyz").json()["model_version"] == good.version
            assert httpx.post(f"{base}/v1/predict", json={"inputs": ["good"]}).status_code == 200
    finally:
        db.dispose()
    assert "Exception in ASGI application" not in (tmp_path / "api.log").read_text()
