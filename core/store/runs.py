"""Retrain runs and their lease: one run in flight, heartbeats, and fencing by lease owner.

A worker claims a run before training (a conditional UPDATE: the row count says who won), keeps
the lease alive while it trains, and finishes the run only while it still owns the lease. A run
whose lease expired is taken up again by the reaper; a redelivered message for a finished run,
or for a run another worker holds, does nothing. So a run never trains or promotes twice.
The reads of runs are in `core.store.run_queries`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.states import FINAL_STATES, RunState, RunTrigger
from core.store.db import Database
from core.store.records import RunRecord
from core.store.run_queries import active_run, run_record
from core.store.tables import RetrainRun, new_id, utcnow


def runs_folder(artifacts: Path) -> Path:
    """Where runs keep their files, one folder per run id (data snapshots: provenance)."""
    return artifacts / "runs"


def create_run(
    db: Database,
    *,
    trigger: RunTrigger,
    params: dict[str, Any] | None = None,
    check_id: str | None = None,
) -> tuple[RunRecord, bool]:
    """A new queued run, or the run already in flight and False.

    `check_id`: the monitor check whose policy starts it."""
    row = RetrainRun(
        id=new_id(),
        trigger=trigger,
        state=RunState.QUEUED,
        active_slot=1,
        params=params or {},
        created_at=utcnow(),
        check_id=check_id,
    )
    try:
        with db.session() as session:
            session.add(row)
        return run_record(row), True
    except IntegrityError:
        active = active_run(db)
        if active is None:  # finished between our insert and this read: try once more
            return create_run(db, trigger=trigger, params=params, check_id=check_id)
        return active, False


def claim(
    db: Database, run_id: str, *, owner: str, lease_seconds: int, max_attempts: int | None = None
) -> bool:
    """Take the run if it is queued or its lease expired (and it has had fewer than
    `max_attempts`); False when someone else has it or it has had its attempts."""
    now = utcnow()
    with db.session() as session:
        expired = and_(RetrainRun.state == RunState.RUNNING, RetrainRun.lease_expires_at < now)
        if max_attempts is not None:
            expired = and_(expired, RetrainRun.attempts < max_attempts)
        claimable = or_(RetrainRun.state == RunState.QUEUED, expired)
        result = session.execute(
            update(RetrainRun)
            .where(RetrainRun.id == run_id, claimable)
            .values(
                state=RunState.RUNNING,
                lease_owner=owner,
                attempts=RetrainRun.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
                error=None,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def heartbeat(
    db: Database,
    run_id: str,
    *,
    owner: str,
    lease_seconds: int,
    progress: float | None = None,
    loss: float | None = None,
) -> bool:
    """Extend the lease (and record progress); False when the lease was lost."""
    values: dict[str, Any] = {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    if loss is not None:
        values["loss"] = loss
    with db.session() as session:
        result = session.execute(
            update(RetrainRun)
            .where(
                RetrainRun.id == run_id,
                RetrainRun.lease_owner == owner,
                RetrainRun.state == RunState.RUNNING,
            )
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def owned_run(session: Session, run_id: str, *, owner: str) -> RetrainRun | None:
    """The run row locked for update, only while `owner` holds its lease (fencing)."""
    row = session.get(RetrainRun, run_id, with_for_update=True)
    if row is None or row.state != RunState.RUNNING or row.lease_owner != owner:
        return None
    return row


def update_run(db: Database, run_id: str, *, owner: str, **fields: Any) -> bool:
    """Set fields on a run this owner holds; False when the lease was lost."""
    with db.session() as session:
        row = owned_run(session, run_id, owner=owner)
        if row is None:
            return False
        for key, value in fields.items():
            setattr(row, key, value)
        return True


def finish(session: Session, row: RetrainRun, *, state: RunState, **fields: Any) -> None:
    """Close a run inside the caller's transaction (so a promotion and its run commit together)."""
    assert state in FINAL_STATES
    row.state, row.active_slot, row.finished_at = state, None, utcnow()
    row.lease_expires_at = None
    if state in (RunState.PROMOTED, RunState.CANARY):
        row.progress = 1.0
    for key, value in fields.items():
        setattr(row, key, value)


def fail(db: Database, run_id: str, *, owner: str | None, error: str) -> bool:
    """Mark a run failed (by its owner, or by anyone when owner is None)."""
    with db.session() as session:
        row = session.get(RetrainRun, run_id, with_for_update=True)
        if (
            row is None
            or row.state in FINAL_STATES
            or (owner is not None and row.lease_owner != owner)
        ):
            return False
        finish(session, row, state=RunState.FAILED, error=error[:4000])
        return True


def cancel(db: Database, run_id: str) -> tuple[RunRecord, bool]:
    """Cancel a queued run (a worker that gets its task later will not claim it); returns the
    run and whether it was cancelled (False: it had started or finished). KeyError if unknown."""
    with db.session() as session:
        row = session.get(RetrainRun, run_id, with_for_update=True)
        if row is None:
            raise KeyError(run_id)
        if row.state != RunState.QUEUED:
            return run_record(row), False
        finish(session, row, state=RunState.CANCELLED, error="cancelled while queued")
        return run_record(row), True


def fail_exhausted(db: Database, *, now: datetime, max_attempts: int) -> list[str]:
    """Fail every run whose lease expired on its last allowed attempt: its worker died that
    many times (a poison run: out of memory, a crash in native code), so it is not sent again."""
    error = (
        f"the worker running it died {max_attempts} time(s) (lease expired each time); "
        "not retried: see the worker logs"
    )
    with db.session() as session:
        rows = session.scalars(
            select(RetrainRun)
            .where(
                RetrainRun.state == RunState.RUNNING,
                RetrainRun.lease_expires_at < now,
                RetrainRun.attempts >= max_attempts,
            )
            .with_for_update()
        ).all()
        for row in rows:
            finish(session, row, state=RunState.FAILED, error=error)
        return [row.id for row in rows]


def stale_runs(db: Database, *, now: datetime, queued_grace_seconds: int) -> list[str]:
    """Runs to take up again: running with an expired lease, or queued and never claimed
    (after `fail_exhausted`, so the expired ones left have attempts to go)."""
    with db.session() as session:
        rows = session.scalars(
            select(RetrainRun.id).where(
                or_(
                    and_(RetrainRun.state == RunState.RUNNING, RetrainRun.lease_expires_at < now),
                    and_(
                        RetrainRun.state == RunState.QUEUED,
                        RetrainRun.created_at < now - timedelta(seconds=queued_grace_seconds),
                    ),
                )
            )
        )
        return list(rows)
