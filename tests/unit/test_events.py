"""The audit trail: every registry change is an event of its transaction; rollback walks it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from core.promotion import ArtifactBroken, rollback_checked
from core.registry import NoChampion, Registry, VersionInfo, flip_champion
from core.settings import Settings
from core.states import EventKind, RunState, RunTrigger
from core.store.db import Database, upgrade
from core.store.events import Cause, list_events
from core.store.run_queries import get_run
from core.store.runs import claim, create_run
from retrain.context import Context
from retrain.gate import Verdict
from retrain.run import Run


def version(registry: Registry) -> str:
    """A registered version; nothing here loads it, so its artifact may be empty."""
    staged = registry.staging_dir()
    return registry.register(
        staged, task="classification", labels=["a", "b"], base_model="t"
    ).version


def champions(registry: Registry, count: int) -> list[str]:
    """`count` versions, each promoted in turn."""
    versions = [version(registry) for _ in range(count)]
    for v in versions:
        registry.promote(v)
    return versions


def champion(registry: Registry) -> str:
    info = registry.champion()
    assert info is not None
    return info.version


def test_every_change_is_an_event_with_its_actor_reason_and_previous(registry: Registry) -> None:
    registry.register(
        registry.staging_dir(),
        task="classification",
        labels=["a", "b"],
        base_model="t",
        cause=Cause("cli", "init"),
    )
    registry.promote("v1", cause=Cause("ops-key", "manual"))
    version(registry)
    registry.promote("v2")
    registry.rollback(cause=Cause("admin-token", "bad answers"))
    events = list_events(registry.db)  # newest first
    kinds = [(e.kind, e.version, e.previous, e.actor) for e in events]
    assert kinds == [
        ("rolled_back", "v1", "v2", "admin-token"),
        ("promoted", "v2", "v1", "cli"),
        ("registered", "v2", "v1", "cli"),
        ("promoted", "v1", None, "ops-key"),
        ("registered", "v1", None, "cli"),
    ]
    assert events[0].reason == "bad answers" and events[-1].reason == "init"
    assert [e.version for e in list_events(registry.db, version="v2")] == ["v1", "v2", "v2"]


def test_repeated_rollbacks_walk_back_instead_of_toggling(registry: Registry) -> None:
    champions(registry, 3)
    assert registry.rollback().version == "v2"
    assert registry.rollback().version == "v1"
    with pytest.raises(NoChampion, match="first champion"):
        registry.rollback()
    assert champion(registry) == "v1"


def test_a_promotion_after_a_rollback_is_rolled_back_to_the_champion_it_replaced(
    registry: Registry,
) -> None:
    champions(registry, 3)
    registry.rollback()  # v3 -> v2
    registry.promote(version(registry))  # v4 replaces v2
    assert registry.rollback().version == "v2"
    assert registry.rollback().version == "v1"


def test_an_event_commits_only_with_its_change(registry: Registry) -> None:
    champions(registry, 1)
    version(registry)
    before = list_events(registry.db)
    with pytest.raises(RuntimeError), registry.db.session() as session:
        flip_champion(session, "v2")
        raise RuntimeError("the transaction fails after the flip")
    assert list_events(registry.db) == before and champion(registry) == "v1"


def test_rollback_refuses_a_version_that_does_not_load(registry: Registry) -> None:
    champions(registry, 2)

    def load(info: VersionInfo) -> object:
        raise OSError(f"{info.version} weights missing")

    with pytest.raises(ArtifactBroken, match="v1 does not load"):
        rollback_checked(registry, load=load, cause=Cause("ops-key", "manual"))  # type: ignore[arg-type]
    assert champion(registry) == "v2"
    refused = list_events(registry.db, limit=1)[0]
    assert (refused.kind, refused.version, refused.actor) == ("refused", "v1", "ops-key")
    assert "weights missing" in refused.reason


def test_a_runs_verdict_is_an_event_of_the_policy_naming_its_run_and_check(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = Settings(home=tmp_path, database_url=sqlite_url)
    db = Database(sqlite_url)
    ctx = Context(settings=settings, db=db, registry=Registry(db, settings.artifacts))
    champions(ctx.registry, 1)
    candidates = [version(ctx.registry), version(ctx.registry)]
    verdicts = [
        Verdict(False, "mcnemar_midp", 0.4, 0.0, reasons=["no gain on feedback"]),
        Verdict(True, "mcnemar_midp", 0.01, 0.1, reasons=["gain 0.1 on feedback"]),
    ]
    for candidate, verdict in zip(candidates, verdicts, strict=True):
        run, _ = create_run(db, trigger=RunTrigger.QUALITY, check_id="check-1")
        assert claim(db, run.run_id, owner="w", lease_seconds=60)
        held = Run(ctx, run.run_id, "w")
        held.update(champion_version="v1")
        held.conclude(ctx.registry.get(candidate), {}, verdict)
        assert get_run(db, run.run_id).check_id == "check-1"
    promoted, rejected = list_events(db, limit=2)
    assert (promoted.kind, promoted.version, promoted.actor) == (
        "promoted",
        "v3",
        "policy",
    )
    assert promoted.check_id == "check-1" and promoted.reason == "gain 0.1 on feedback"
    assert (rejected.kind, rejected.version, rejected.previous) == ("rejected", "v2", "v1")
    assert rejected.run_id != promoted.run_id and rejected.check_id == "check-1"
    assert get_run(db, promoted.run_id).state == RunState.PROMOTED


def test_migration_0004_keeps_the_data_and_backfills_the_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    db = Database(url)
    with db.engine.begin() as conn:
        for number, promoted in ((1, "2026-01-01 10:00:00"), (2, "2026-01-02 10:00:00")):
            conn.execute(
                text(
                    "INSERT INTO model_version (version, number, task, labels, artifact_path, "
                    "base_model, params, metrics, status, created_at, promoted_at) VALUES "
                    "(:v, :n, 'classification', '[]', '/a', 't', '{}', '{}', 'archived', "
                    "'2026-01-01 09:00:00', :p)"
                ),
                {"v": f"v{number}", "n": number, "p": promoted},
            )
        conn.execute(
            text(
                "INSERT INTO model_alias (name, version, previous, updated_at) "
                "VALUES ('champion', 'v2', 'v1', '2026-01-02 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO retrain_run (id, trigger, state, created_at, attempts, progress, "
                "params, metrics, verdict) VALUES ('r1', 'drift', 'promoted', "
                "'2026-01-02 09:00:00', 1, 1.0, '{}', '{}', '{}')"
            )
        )
    upgrade(url)
    registry = Registry(db, tmp_path / "artifacts")
    assert [v.version for v in registry.list()] == ["v2", "v1"]
    run = get_run(db, "r1")
    assert run.trigger == "drift" and run.check_id is None
    kinds = [(e.kind, e.version, e.actor) for e in reversed(list_events(db))]
    assert kinds == [
        ("registered", "v1", "migration"),
        ("registered", "v2", "migration"),
        ("promoted", "v1", "migration"),
        ("promoted", "v2", "migration"),
    ]
    assert registry.rollback().version == "v1"  # as the alias's `previous` said before
    assert list_events(db, limit=1)[0].kind == EventKind.ROLLED_BACK
    db.dispose()
