"""Rollback with history and the lineage route over HTTP, and the same through the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from core.lineage import lineage
from core.registry import Registry, VersionInfo
from core.settings import ApiSettings, Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.events import list_events
from core.store.runs import create_run
from tests.unit.calls import admin_client
from tests.unit.fakes import Fake
from tuneloop.cli import main

BROKEN: set[str] = set()  # versions whose artifact the fake loader refuses


def load(version: VersionInfo) -> Fake:
    if version.version in BROKEN:
        raise OSError(f"no weights for {version.version}")
    return Fake(version.version)


def register(registry: Registry, *, parent: str | None = None, run_id: str | None = None) -> str:
    params = {"run_id": run_id} if run_id else {}
    info = registry.register(
        registry.staging_dir(),
        task="classification",
        labels=Fake.labels,
        base_model="f",
        parent=parent,
        params=params,
    )
    return info.version


@pytest.fixture
def registry(db: Database, tmp_path: Path) -> Registry:
    """v1, v2 and v3, each the parent of the next, promoted in turn: v3 serves."""
    registry = Registry(db, tmp_path / "artifacts")
    parent = None
    for _ in range(3):
        parent = register(registry, parent=parent)
        registry.promote(parent)
    BROKEN.clear()
    return registry


@pytest.fixture
def admin(registry: Registry, tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    """The app, and the headers of an admin key named `ops`."""
    settings = Settings(
        home=tmp_path, database_url=sqlite_url, api=ApiSettings(key_refresh_seconds=0.05)
    )
    with admin_client(registry.db, settings, load=load) as client:
        yield client


def test_rollbacks_over_http_walk_back_then_answer_409(admin: TestClient) -> None:
    assert admin.post("/v1/models/rollback").json()["version"] == "v2"
    assert admin.post("/v1/models/rollback").json()["version"] == "v1"
    last = admin.post("/v1/models/rollback")
    assert last.status_code == 409 and "nothing to roll back" in last.json()["detail"]
    events = admin.get("/v1/models/v2/lineage").json()["events"]
    rolled = [e for e in events if e["kind"] == "rolled_back"]
    assert [(e["version"], e["previous"], e["actor"]) for e in rolled] == [
        ("v1", "v2", "ops"),
        ("v2", "v3", "ops"),
    ]


def test_a_rollback_to_a_version_that_does_not_load_is_409_and_changes_nothing(
    admin: TestClient, registry: Registry
) -> None:
    BROKEN.add("v2")
    refused = admin.post("/v1/models/rollback")
    assert refused.status_code == 409 and "v2 does not load" in refused.json()["detail"]
    champion = registry.champion()
    assert champion is not None and champion.version == "v3"
    assert list_events(registry.db, limit=1)[0].kind == "refused"
    without_key = admin.post("/v1/models/rollback", headers={"Authorization": ""})
    assert without_key.status_code == 401


def test_lineage_names_the_run_its_check_the_events_and_the_parents(
    admin: TestClient, registry: Registry
) -> None:
    run, _ = create_run(registry.db, trigger=RunTrigger.DRIFT, check_id="check-7")
    v4 = register(registry, parent="v3", run_id=run.run_id)
    admin.post(f"/v1/models/{v4}/promote")
    answer = admin.get(f"/v1/models/{v4}/lineage")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"]["version"] == "v4" and body["parent"] == "v3" and body["serving"]
    assert body["run"]["run_id"] == run.run_id and body["run"]["check_id"] == "check-7"
    assert body["run"]["trigger"] == "drift"
    assert [a["version"] for a in body["ancestors"]] == ["v3", "v2", "v1"]
    assert [(e["kind"], e["actor"]) for e in body["events"]][:2] == [
        ("promoted", "ops"),
        ("registered", "cli"),
    ]
    assert admin.get("/v1/models/v9/lineage").status_code == 404


def test_the_lineage_answer_is_the_lineage_and_its_schema_says_so(
    admin: TestClient, registry: Registry
) -> None:
    run, _ = create_run(registry.db, trigger=RunTrigger.DRIFT, check_id="check-7")
    v4 = register(registry, parent="v3", run_id=run.run_id)
    shown = admin.get(f"/v1/models/{v4}/lineage").json()
    assert shown == json.loads(json.dumps(lineage(registry, v4)))  # no key added or dropped
    gone = register(registry, parent=v4, run_id="gone")  # its run is no longer stored
    assert admin.get(f"/v1/models/{gone}/lineage").json()["run"] == {
        "run_id": "gone",
        "state": "unknown",
    }
    spec = admin.get("/openapi.json").json()
    answer = spec["paths"]["/v1/models/{version}/lineage"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Lineage"
    }
    assert set(spec["components"]["schemas"]["Lineage"]["properties"]) == set(shown)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def loadable(
    registry: Registry, base_artifact: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> Registry:
    """The registry's artifacts replaced by a tiny real classifier, so the CLI's loader loads
    them; v2's is left empty (it does not load)."""
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TUNELOOP_ARTIFACT_DIR", str(registry.models_dir.parent))
    monkeypatch.setenv("TUNELOOP_DEVICE", "cpu")
    for version in ("v1", "v3"):
        shutil.copytree(base_artifact, registry.models_dir / version, dirs_exist_ok=True)
    return registry


def test_the_cli_refuses_a_rollback_to_a_broken_version_and_history_shows_why(
    loadable: Registry,
) -> None:
    refused = cli("models", "rollback")
    assert refused.exit_code == 1 and "not rolled back: v2 does not load" in refused.output
    assert cli("models", "promote", "v1", "--reason", "v3 misreads sarcasm").exit_code == 0
    rolled = cli("models", "rollback", "--reason", "back to v3")
    assert rolled.exit_code == 0 and "champion is now v3" in rolled.output
    shown = cli("models", "history", "--limit", "3")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert len(lines) == 3
    assert "rolled_back" in lines[0] and "v3" in lines[0] and "(was v1)" in lines[0]
    assert lines[0].endswith(": back to v3") and "by cli" in lines[0]
    assert "promoted" in lines[1] and lines[1].endswith("v3 misreads sarcasm")
    assert "refused" in lines[2] and "v2 does not load" in lines[2]
