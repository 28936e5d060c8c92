"""Queries of retrain runs: one run, the recent ones, the one in flight, and what the monitor's
policy asks of the past (the last run that judged its data, the last finish).

The lifecycle (create, claim, lease, finish) is in `core.store.runs`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from core.states import RunState, RunTrigger
from core.store.db import Database
from core.store.records import JudgedRun, RunMetrics, RunRecord
from core.store.tables import RetrainRun


class RunNotFound(LookupError):
    """No retrain run has that id."""


def active_run(db: Database) -> RunRecord | None:
    """The queued or running run, if any."""
    with db.session() as session:
        row = session.scalars(select(RetrainRun).where(RetrainRun.active_slot == 1)).first()
        return run_record(row) if row else None


def get_run(db: Database, run_id: str) -> RunRecord:
    """One run."""
    with db.session() as session:
        row = session.get(RetrainRun, run_id)
        if row is None:
            raise RunNotFound(run_id)
        return run_record(row)


def list_runs(db: Database, *, limit: int = 50) -> list[RunRecord]:
    """Recent runs, newest first."""
    with db.session() as session:
        rows = session.scalars(
            select(RetrainRun).order_by(RetrainRun.created_at.desc()).limit(limit)
        )
        return [run_record(r) for r in rows]


def run_record(row: RetrainRun) -> RunRecord:
    """A run row as its frozen record."""
    return RunRecord(
        run_id=row.id,
        state=RunState(row.state),
        trigger=RunTrigger(row.trigger),
        progress=row.progress,
        loss=row.loss,
        check_id=row.check_id,
        version=row.version,
        champion_version=row.champion_version,
        metrics=RunMetrics.from_json(row.metrics),
        verdict=dict(row.verdict or {}),
        params=dict(row.params or {}),
        error=row.error,
        attempts=row.attempts,
        dataset_hash=row.dataset_hash,
        dataset_path=row.dataset_path,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def last_judged_run(db: Database) -> JudgedRun | None:
    """The most recent run that judged its data: when it began (queued runs: their creation),
    its state and version (the challenger it trained, or promoted at a second look).

    A run rejected before it trained (too few rows for the gate's paired test, so no metrics)
    saw no challenger, nor did a cancelled one: neither counts, or it would make the next run
    wait for a full batch of new labels when a few more rows would have let it train.
    """
    began = func.coalesce(RetrainRun.started_at, RetrainRun.created_at)
    with db.session() as session:
        rows = session.execute(
            select(began, RetrainRun.state, RetrainRun.version, RetrainRun.metrics).order_by(
                began.desc()
            )
        )
        for start, state, version, metrics in rows:
            if state not in (RunState.REJECTED, RunState.CANCELLED) or metrics:
                return JudgedRun(began=start, state=RunState(state), version=version)
    return None


def previous_judged(db: Database, *, before: str, look_back: int = 20) -> RunRecord | None:
    """The most recent finished run other than `before` whose gate judged a challenger (it
    has metrics)."""
    with db.session() as session:
        rows = session.scalars(
            select(RetrainRun)
            .where(RetrainRun.id != before, RetrainRun.finished_at.is_not(None))
            .order_by(RetrainRun.finished_at.desc())
            .limit(look_back)
        )
        for row in rows:
            if row.metrics:
                return run_record(row)
    return None


def last_finished_at(db: Database) -> datetime | None:
    """When the most recent run finished (the policy's cooldown starts there); a cancelled run
    never ran, so it starts none."""
    with db.session() as session:
        return session.scalar(
            select(func.max(RetrainRun.finished_at)).where(RetrainRun.state != RunState.CANCELLED)
        )
