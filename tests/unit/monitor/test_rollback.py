"""Automatic rollback: a new champion rated below the bound soon after its promotion goes back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.registry import Registry
from core.settings import MonitorSettings, Settings
from core.store.db import Database
from core.store.events import list_events
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import ModelEvent, utcnow
from monitor.checks import Context
from monitor.rollback import rollback_due
from monitor.service import run_check
from tests.factories import prediction_row


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str) -> Context:
    """v1, then v2 promoted over it; a bound of 2.5 over 20 ratings within an hour."""
    monitor = MonitorSettings(rollback_below=2.5, rollback_seconds=3600, min_feedback=20)
    settings = Settings(home=tmp_path, database_url=sqlite_url, monitor=monitor)
    db = Database(sqlite_url)
    registry = Registry(db, settings.artifacts)
    for _ in range(2):
        staged = registry.staging_dir()
        info = registry.register(staged, task="classification", labels=["a", "b"], base_model="t")
        registry.promote(info.version)
    started: list[object] = []
    return Context(settings, db, registry, lambda trigger, check: started.append(trigger))


def rate(ctx: Context, version: str, rating: int, n: int = 20) -> None:
    """`n` predictions of `version`, served now, each rated `rating`."""
    rows = [prediction_row(str(uuid.uuid4()), version=version) for _ in range(n)]
    insert_predictions(ctx.db, rows)
    for row in rows:
        submit_feedback(ctx.db, prediction_id=row["id"], rating=rating)


def champion(ctx: Context) -> str:
    info = ctx.registry.champion()
    assert info is not None
    return info.version


def test_a_new_champion_rated_below_the_bound_is_rolled_back_by_the_policy(ctx: Context) -> None:
    rate(ctx, "v2", 1, n=15)
    rate(ctx, "v2", 4, n=5)  # mean 1.75
    check = run_check(ctx)
    assert check.decision == "rollback" and champion(ctx) == "v1"
    assert check.reason.startswith("rolled back to v1: mean rating 1.75 of 20 ratings")
    event = list_events(ctx.db, limit=1)[0]
    assert (event.kind, event.version, event.previous) == ("rolled_back", "v1", "v2")
    assert event.actor == "policy" and event.check_id == check.id
    assert "below 2.5" in event.reason
    rate(ctx, "v1", 1)  # the version rolled back to is not judged again
    assert rollback_due(ctx, ctx.registry.get("v1")) is None


def test_no_rollback_on_good_ratings_too_few_off_or_too_late(ctx: Context) -> None:
    v2 = ctx.registry.get("v2")
    rate(ctx, "v2", 1, n=19)
    assert rollback_due(ctx, v2) is None  # 19 of the 20 ratings it is judged on
    rate(ctx, "v2", 5, n=20)
    assert rollback_due(ctx, v2) is None  # mean 3.05
    rate(ctx, "v2", 1, n=40)
    assert rollback_due(ctx, v2) is not None
    ctx.settings.monitor.rollback_below = 0.0
    assert rollback_due(ctx, v2) is None  # off
    ctx.settings.monitor.rollback_below = 2.5
    with ctx.db.session() as session:
        session.execute(update(ModelEvent).values(created_at=utcnow() - timedelta(hours=2)))
    assert rollback_due(ctx, v2) is None  # promoted two hours ago: past rollback_seconds
