"""Canary rows: the one that runs (at most one, canary or shadow: `active_slot`), how each ended,
and the per-arm feedback sums a canary's sequential test reads (a shadow's reads:
core.store.shadow).

Every api replica reads the running canary on its champion poll, so all of them serve the same
split; a look locks the row, so replicas judging feedback at once take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.states import CanaryOutcome
from core.store.db import Database
from core.store.tables import Canary, Feedback, Prediction, new_id, utcnow

CHAMPION_ARM, CANARY_ARM, SHADOW_ARM = "champion", "canary", "shadow"
ARMS = (CHAMPION_ARM, CANARY_ARM)  # the arms that answer clients
CANARY_MODE, SHADOW_MODE = "canary", "shadow"


class CanaryRunning(Exception):
    """Another canary or shadow runs; one at a time."""


@dataclass(frozen=True)
class CanaryRow:
    """A canary as plain data."""

    id: str
    version: str
    champion_version: str
    share: float
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    actor: str
    stats: dict[str, Any]
    mode: str = CANARY_MODE

    @property
    def running(self) -> bool:
        """True until it is promoted, aborted, expired or stopped."""
        return self.outcome is None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON answers."""
        return {
            "id": self.id,
            "mode": self.mode,
            "version": self.version,
            "champion_version": self.champion_version,
            "share": self.share,
            "state": self.outcome or "running",
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "actor": self.actor,
            **self.stats,
        }


def canary_row(row: Canary) -> CanaryRow:
    """A table row as plain data."""
    return CanaryRow(
        id=row.id,
        version=row.version,
        champion_version=row.champion_version,
        share=row.share,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        actor=row.actor,
        stats=dict(row.stats or {}),
        mode=row.mode or CANARY_MODE,
    )


def running_canary(db: Database) -> CanaryRow | None:
    """The canary that runs now, if any (what each replica reads on its champion poll)."""
    with db.session() as session:
        row = session.scalars(select(Canary).where(Canary.active_slot == 1)).first()
        return canary_row(row) if row else None


def latest_canary(db: Database, mode: str = CANARY_MODE) -> CanaryRow | None:
    """The running canary (or shadow: `mode`), else the one that started last."""
    with db.session() as session:
        query = (
            select(Canary)
            .where(Canary.mode == mode)
            .order_by(Canary.active_slot.is_(None), Canary.started_at.desc())
        )
        row = session.scalars(query.limit(1)).first()
        return canary_row(row) if row else None


def locked_canary(session: Session) -> Canary | None:
    """The running canary's row, locked until the caller's transaction ends."""
    return session.scalars(select(Canary).where(Canary.active_slot == 1).with_for_update()).first()


def begin(
    session: Session,
    *,
    version: str,
    champion_version: str,
    share: float,
    actor: str,
    stats: dict[str, Any],
    mode: str = CANARY_MODE,
) -> Canary:
    """Add a running canary (or shadow) inside the caller's transaction; CanaryRunning if one
    runs (a race lost at commit raises IntegrityError on the slot: the caller maps it)."""
    if (running := locked_canary(session)) is not None:
        raise CanaryRunning(f"a {running.mode} of {running.version} already runs: stop it first")
    row = Canary(
        id=new_id(),
        mode=mode,
        version=version,
        champion_version=champion_version,
        share=share,
        active_slot=1,
        started_at=utcnow(),
        actor=actor,
        stats=stats,
    )
    session.add(row)
    return row


def end(row: Canary, outcome: CanaryOutcome) -> None:
    """Mark a canary ended (inside the caller's transaction): it frees the slot."""
    row.active_slot, row.outcome, row.ended_at = None, outcome, utcnow()


def arm_sums(session: Session, row: Canary) -> dict[str, dict[str, tuple[int, float, float]]]:
    """Per arm, `rating` and `accuracy` as (items, sum, sum of squares) of the feedback given on
    predictions it served since the canary started (excluded feedback left out).

    Accuracy is 1 where a corrected label names the predicted one, 0 where it names another;
    for 0/1 scores the sum of squares is the sum.
    """
    right = func.sum(case((Feedback.label == Prediction.label, 1), else_=0))
    query = (
        select(
            Prediction.arm,
            func.count(Feedback.id),
            func.sum(Feedback.rating),
            func.sum(Feedback.rating * Feedback.rating),
            func.count(Feedback.label),
            right,
        )
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(*_served_since(row))
        .group_by(Prediction.arm)
    )
    sums = {arm: {"rating": (0, 0.0, 0.0), "accuracy": (0, 0.0, 0.0)} for arm in ARMS}
    for arm, n, total, total_sq, labeled, correct in session.execute(query):
        sums[arm] = {
            "rating": (int(n), float(total or 0), float(total_sq or 0)),
            "accuracy": (int(labeled), float(correct or 0), float(correct or 0)),
        }
    return sums


def preferred_pairs(session: Session, row: Canary) -> list[tuple[str, str, str, str]]:
    """(feedback id, arm, generated text, preferred output) of the feedback that names a
    preferred output on a generation either arm served since the canary started (excluded
    feedback left out)."""
    query = (
        select(Feedback.id, Prediction.arm, Prediction.output, Feedback.preferred_output)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(*_served_since(row), Feedback.preferred_output.is_not(None))
    )
    return [
        (feedback_id, arm, generated_text(output), preferred)
        for feedback_id, arm, output, preferred in session.execute(query)
    ]


def generated_text(output: dict[str, Any] | None) -> str:
    """The text of a stored generation's output ("" where none)."""
    return str((output or {}).get("text") or "")


def _served_since(row: Canary) -> tuple[Any, ...]:
    """The filter of the feedback a canary's test reads: on what each arm served since it
    started, given since then, not excluded."""
    served = or_(
        and_(Prediction.arm == CHAMPION_ARM, Prediction.model_version == row.champion_version),
        and_(Prediction.arm == CANARY_ARM, Prediction.model_version == row.version),
    )
    return (
        Feedback.excluded_at.is_(None),
        Feedback.created_at >= row.started_at,
        Prediction.created_at >= row.started_at,
        served,
    )
