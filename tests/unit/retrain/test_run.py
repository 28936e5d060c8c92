"""The run object's lease: only the worker holding it writes the run or its versions."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.registry import Registry
from core.settings import Settings
from core.states import RunState, RunTrigger, VersionStatus
from core.store.db import Database
from core.store.run_queries import get_run
from core.store.runs import claim, create_run
from core.store.tables import RetrainRun, utcnow
from retrain.context import Context, LeaseLost
from retrain.run import Run
from tests.unit.retrain.factories import PROMOTE, claimed, version


@pytest.fixture
def ctx(tmp_path: Path, sqlite_url: str) -> Context:
    settings = Settings(home=tmp_path, database_url=sqlite_url)
    db = Database(sqlite_url)
    return Context(settings=settings, db=db, registry=Registry(db, settings.artifacts))


def taken_over(ctx: Context) -> tuple[Run, Run]:
    """The run as its first worker (who stalled past the lease) and its new owner see it."""
    old = claimed(ctx)
    with ctx.db.session() as session:
        session.execute(update(RetrainRun).values(lease_expires_at=utcnow() - timedelta(1)))
    assert claim(ctx.db, old.id, owner="w2", lease_seconds=60)
    return old, Run(ctx, old.id, "w2")


def lease_expiry(ctx: Context, run_id: str) -> datetime:
    with ctx.db.session() as session:
        row = session.get(RetrainRun, run_id)
        assert row is not None and row.lease_expires_at is not None
        return row.lease_expires_at


def test_a_run_whose_lease_was_taken_over_writes_nothing(ctx: Context) -> None:
    champion = ctx.registry.promote(version(ctx.registry).version)
    candidate = version(ctx.registry)
    old, new = taken_over(ctx)
    new.update(progress=0.5)
    before = get_run(ctx.db, old.id)
    with pytest.raises(LeaseLost):
        old.update(progress=0.9)
    with pytest.raises(LeaseLost):
        old.progress()(0.5, 1.0)
    with pytest.raises(LeaseLost):
        old.mark(candidate.version, VersionStatus.REJECTED, note="stale")
    with pytest.raises(LeaseLost):
        old.conclude(candidate, {}, PROMOTE)
    assert not old.fail("stale worker")
    assert get_run(ctx.db, old.id) == before
    assert ctx.registry.get(candidate.version).status == VersionStatus.CANDIDATE
    now = ctx.registry.champion()
    assert now is not None and now.version == champion.version
    # The new owner's writes go through.
    assert new.conclude(candidate, {}, PROMOTE) == RunState.PROMOTED
    now = ctx.registry.champion()
    assert now is not None and now.version == candidate.version


def test_progress_renews_the_lease_and_scales_into_the_runs_training_share(ctx: Context) -> None:
    run = claimed(ctx)
    expires = lease_expiry(ctx, run.id)
    run.progress(part=(1, 2))(0.5, 0.25)  # halfway through the second of two trainings
    done = get_run(ctx.db, run.id)
    assert done.progress == pytest.approx(0.05 + 0.85 * 0.75) and done.loss == 0.25
    assert lease_expiry(ctx, run.id) > expires


def test_a_failed_run_frees_the_slot_for_the_next(ctx: Context) -> None:
    run = claimed(ctx)
    assert run.fail("boom")
    assert get_run(ctx.db, run.id).state == RunState.FAILED
    assert create_run(ctx.db, trigger=RunTrigger.MANUAL)[1]
