"""A canary on a real served api over PostgreSQL: a tiny gate-passed challenger serves one key's
requests and not the other's, the store keeps each prediction's arm, and stopping it by hand sends
every key back to the champion. A shadow of the same weights runs on every request, is never
answered, and agrees with the champion on every label."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from core.canary import in_canary
from core.keys import Scope
from core.store.db import Database, upgrade
from core.store.events import list_events
from core.store.keys import create_key
from core.store.tables import Prediction
from tests.factories import register_champion
from tests.integration.server import TOKEN, serving, tuneloop_env

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
POLL = "0.2"


def until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def with_challenger(db: Database, tmp_path: Path, base_artifact: Path) -> None:
    """v1 the champion, v2 a gate-passed copy of its weights."""
    registry = register_champion(db, tmp_path / "artifacts", base_artifact)
    staged = registry.staging_dir()
    shutil.copytree(base_artifact, staged, dirs_exist_ok=True)
    registry.register(
        staged,
        task="classification",
        labels=["negative", "positive"],
        base_model="tiny-bert",
        parent="v1",
        metrics={"gate": {"promote": True, "run_id": "r1"}},
    )


def test_a_canary_serves_its_share_of_keys_stops_by_hand_and_a_shadow_mirrors(
    tmp_path: Path, fresh_postgres_url: str, base_artifact: Path
) -> None:
    upgrade(fresh_postgres_url)
    db = Database(fresh_postgres_url)
    with_challenger(db, tmp_path, base_artifact)
    env = tuneloop_env(
        tmp_path,
        fresh_postgres_url,
        TUNELOOP_API_OPEN="false",  # keys, not the one client address, decide the arm
        TUNELOOP_API_MODEL_POLL_SECONDS=POLL,
        TUNELOOP_API_KEY_REFRESH_SECONDS=POLL,
        TUNELOOP_API_LOG_FLUSH_SECONDS=POLL,
    )
    try:
        with serving(env, tmp_path / "api.log") as base:
            api = httpx.Client(base_url=base, timeout=60)
            started = api.post("/v1/models/v2/canary", json={"share": 0.5}, headers=ADMIN)
            assert started.status_code == 201, started.text
            canary_id = started.json()["id"]
            keys: dict[str, dict[str, str]] = {}
            for i in range(64):
                arm = "canary" if in_canary(f"k{i}", share=0.5, salt=canary_id) else "champion"
                if arm not in keys:
                    key, _ = create_key(db, name=f"k{i}", scopes=[Scope.PREDICT])
                    keys[arm] = {"Authorization": f"Bearer {key}"}

            def ask(arm: str) -> dict[str, Any] | None:
                answer = api.post("/v1/predict", json={"inputs": "works"}, headers=keys[arm])
                return answer.json() if answer.status_code == 200 else None  # key not read yet

            until(lambda: (ask("canary") or {}).get("arm") == "canary")
            answers = {arm: until(lambda arm=arm: ask(arm)) for arm in ("canary", "champion")}
            for arm, version in (("canary", "v2"), ("champion", "v1")):
                assert (answers[arm]["arm"], answers[arm]["model_version"]) == (arm, version)
                pid = answers[arm]["predictions"][0]["id"]
                stored = api.get(f"/v1/predictions/{pid}", headers=ADMIN).json()
                assert (stored["arm"], stored["model_version"]) == (arm, version)
            state = api.get("/v1/models/canary", headers=ADMIN).json()
            assert (state["state"], state["version"], state["share"]) == ("running", "v2", 0.5)

            stopped = api.delete("/v1/models/v2/canary", headers=ADMIN)
            assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
            until(lambda: (ask("canary") or {}).get("arm") == "champion")
            assert until(lambda: ask("canary"))["model_version"] == "v1"
            kinds = [e.kind for e in list_events(db, version="v2", limit=2)]
            assert kinds == ["canary_stopped", "canary_started"]
            shadow_of_every_request(api, db, keys["champion"])
    finally:
        db.dispose()


def shadow_of_every_request(api: httpx.Client, db: Database, key: dict[str, str]) -> None:
    """v2 as a shadow: the champion answers, v2's labels are stored beside its and agree."""
    started = api.post("/v1/models/v2/shadow", headers=ADMIN)
    assert started.status_code == 201, started.text
    refused = api.post("/v1/models/v2/canary", json={"share": 0.1}, headers=ADMIN)
    assert refused.status_code == 409 and "shadow of v2" in refused.json()["detail"]

    def ask(text: str) -> str:
        answer = api.post("/v1/predict", json={"inputs": text}, headers=key)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["arm"], body["model_version"]) == ("champion", "v1")
        return str(body["predictions"][0]["id"])

    def mirrors_of(ids: set[str]) -> list[Prediction]:
        with db.session() as session:
            rows = session.scalars(select(Prediction).where(Prediction.shadow_of.in_(ids))).all()
            session.expunge_all()
            return list(rows)

    warm: set[str] = set()
    until(lambda: warm.add(ask("warm up")) or mirrors_of(warm))  # the replica follows its poll
    ids = {ask(t) for t in ("great value", "broke in a day", "fine", "awful")}
    mirrored = until(lambda: len(found := mirrors_of(ids)) == 4 and found)
    assert {(r.arm, r.model_version) for r in mirrored} == {("shadow", "v2")}
    state = until(
        lambda: (s := api.get("/v1/models/shadow", headers=ADMIN).json())["compared"] and s
    )
    assert state["state"] == "running" and state["agreement"] == 1.0  # the same weights
    scraped = api.get("/metrics").text
    assert "tuneloop_canary_shadow_agreement 1.0" in scraped
    assert 'tuneloop_api_shadow_texts_total{outcome="run"}' in scraped
    stopped = api.delete("/v1/models/v2/shadow", headers=ADMIN)
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    kinds = [e.kind for e in list_events(db, version="v2", limit=2)]
    assert kinds == ["shadow_stopped", "shadow_started"]
