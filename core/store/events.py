"""The audit trail: `model_event` rows, and the champion history that rollback walks back.

Every registration, promotion, rollback, gate rejection and refusal is an event with its actor
and reason, written in the same transaction as the change it records (the caller's session), so
the trail never claims a change that did not commit nor misses one that did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.states import EventKind
from core.store.db import Database
from core.store.tables import ModelEvent, utcnow

# The actors that are not an API key: the command line, and a retrain run's own verdict.
CLI = "cli"
POLICY = "policy"
# Promotions and rollbacks: the events that move the champion alias.
_MOVES = (EventKind.PROMOTED, EventKind.ROLLED_BACK)


@dataclass(frozen=True)
class Cause:
    """Who decided a change to the registry and why, and the run and check that led to it."""

    actor: str
    reason: str = ""
    run_id: str | None = None
    check_id: str | None = None


# What a change made by hand records when its caller says no more (the CLI, tests).
MANUAL = Cause(CLI, "manual")


def record_event(
    session: Session, kind: EventKind, version: str, *, previous: str | None, cause: Cause
) -> None:
    """Add an event inside the caller's transaction (it commits with the change it records)."""
    session.add(
        ModelEvent(
            created_at=utcnow(),
            kind=kind,
            version=version,
            previous=previous,
            actor=cause.actor,
            reason=cause.reason,
            run_id=cause.run_id,
            check_id=cause.check_id,
        )
    )


def record(
    db: Database, kind: EventKind, version: str, *, previous: str | None, cause: Cause
) -> None:
    """Record an event that changes nothing else (a refusal) in a transaction of its own."""
    with db.session() as session:
        record_event(session, kind, version, previous=previous, cause=cause)


def list_events(
    db: Database, *, limit: int | None = 50, version: str | None = None
) -> list[EventRecord]:
    """Events newest first; `version`: only those about it (as the version or the one replaced)."""
    query = select(ModelEvent).order_by(ModelEvent.id.desc()).limit(limit)
    if version is not None:
        query = query.where(or_(ModelEvent.version == version, ModelEvent.previous == version))
    with db.session() as session:
        return [EventRecord.of(e) for e in session.scalars(query)]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event of the audit trail as the store reads it back."""

    id: int
    time: datetime  # when it was written (`model_event.created_at`)
    kind: EventKind
    version: str
    previous: str | None  # the champion it happened under (a move: the one replaced)
    actor: str
    reason: str
    run_id: str | None
    check_id: str | None

    @classmethod
    def of(cls, row: ModelEvent) -> EventRecord:
        """The record of a stored row."""
        return cls(
            id=row.id,
            time=row.created_at,
            kind=EventKind(row.kind),
            version=row.version,
            previous=row.previous,
            actor=row.actor,
            reason=row.reason,
            run_id=row.run_id,
            check_id=row.check_id,
        )

    def to_json(self) -> dict[str, Any]:
        """The event as the API answers it."""
        return {
            "id": self.id,
            "time": self.time.isoformat(),
            "kind": self.kind,
            "version": self.version,
            "previous": self.previous,
            "actor": self.actor,
            "reason": self.reason,
            "run_id": self.run_id,
            "check_id": self.check_id,
        }


class Move(NamedTuple):
    """The newest promotion or rollback: what it was, to which version, when."""

    kind: EventKind
    version: str
    at: datetime


def last_move(db: Database) -> Move | None:
    """The newest event that moved the champion alias, if any."""
    query = select(ModelEvent).where(ModelEvent.kind.in_(_MOVES)).order_by(ModelEvent.id.desc())
    with db.session() as session:
        row = session.scalars(query.limit(1)).first()
        return Move(EventKind(row.kind), row.version, row.created_at) if row else None


def champion_history(session: Session) -> list[str]:
    """The champions in the order they served, the current one last, as rollback sees them.

    A promotion pushes its version; a rollback pops the champion it replaced, so repeated
    rollbacks walk back (v3 -> v2 -> v1) instead of toggling between the last two.
    """
    moves = session.scalars(
        select(ModelEvent).where(ModelEvent.kind.in_(_MOVES)).order_by(ModelEvent.id)
    )
    return walk(moves)


def walk(moves: Iterable[ModelEvent]) -> list[str]:
    """The champion stack that promotions and rollbacks (oldest first) leave."""
    stack: list[str] = []
    for event in moves:
        if event.kind == EventKind.ROLLED_BACK and stack:
            stack.pop()
        if not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack
