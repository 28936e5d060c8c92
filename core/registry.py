"""Model registry: versions `v1`, `v2`, … saved under the artifact dir, and the `champion` alias."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.states import EventKind, VersionStatus
from core.store.db import Database
from core.store.events import MANUAL, Cause, champion_history, record_event
from core.store.tables import ModelAlias, ModelVersion, utcnow

# The alias the api serves (an alias name, which happens to spell the champion's status).
CHAMPION = "champion"
# A challenger the gate found promising but not yet significant: it waits for a second look.
PENDING = VersionStatus.PENDING
# A challenger that passed the gate and was promoted as its refit on every label (retrain).
SUPERSEDED = VersionStatus.SUPERSEDED


# The params key of an adapter version naming the version whose full artifact it sits on.
ADAPTER_OF = "adapter_of"


class VersionNotFound(LookupError):
    """No registered version has that name."""


class NoChampion(LookupError):
    """No version has been promoted yet."""


@dataclass(frozen=True)
class VersionInfo:
    version: str
    parent: str | None
    task: str
    labels: list[str]
    artifact_path: str
    base_model: str
    dataset_hash: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    created_at: datetime
    promoted_at: datetime | None

    @property
    def adapter_of(self) -> str | None:
        """The base version of an adapter version; None for a full one."""
        base = self.params.get(ADAPTER_OF)
        return str(base) if base else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON answers."""
        return {
            "version": self.version,
            "parent": self.parent,
            "task": self.task,
            "labels": self.labels,
            "base_model": self.base_model,
            "dataset_hash": self.dataset_hash,
            "params": self.params,
            "metrics": self.metrics,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "promoted_at": self.promoted_at.isoformat() if self.promoted_at else None,
        }


def _info(row: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version=row.version,
        parent=row.parent,
        task=row.task,
        labels=list(row.labels or []),
        artifact_path=row.artifact_path,
        base_model=row.base_model,
        dataset_hash=row.dataset_hash,
        params=dict(row.params or {}),
        metrics=dict(row.metrics or {}),
        status=row.status,
        created_at=row.created_at,
        promoted_at=row.promoted_at,
    )


class Registry:
    """Versions in the store, artifacts on disk; an artifact appears only once fully written."""

    def __init__(self, db: Database, artifact_dir: Path) -> None:
        self.db = db
        self.models_dir = artifact_dir / "models"

    def staging_dir(self) -> Path:
        """A fresh temporary folder to `save_pretrained` into before `register`."""
        path = self.models_dir / f".staging-{uuid.uuid4().hex}"
        path.mkdir(parents=True)
        return path

    def register(
        self,
        staged: Path,
        *,
        task: str,
        labels: list[str],
        base_model: str,
        parent: str | None = None,
        dataset_hash: str | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        cause: Cause = MANUAL,
    ) -> VersionInfo:
        """Give the staged artifact the next version; the rename makes it appear atomically.

        The `registered` event commits with the row, naming `cause` (a run's, or the CLI's)."""
        for _ in range(10):
            with self.db.session() as session:
                number = (session.scalar(select(func.max(ModelVersion.number))) or 0) + 1
            version = f"v{number}"
            final = self.models_dir / version
            row = ModelVersion(
                version=version,
                number=number,
                parent=parent,
                task=task,
                labels=list(labels),
                artifact_path=str(final),
                base_model=base_model,
                dataset_hash=dataset_hash,
                params=params or {},
                metrics=metrics or {},
                status=VersionStatus.CANDIDATE,
                created_at=utcnow(),
            )
            try:
                with self.db.session() as session:
                    session.add(row)
                    session.flush()
                    champion = session.get(ModelAlias, CHAMPION)
                    previous = champion.version if champion else None
                    record_event(
                        session, EventKind.REGISTERED, version, previous=previous, cause=cause
                    )
                    if final.exists():  # left by a crash between rename and commit
                        shutil.rmtree(final)
                    staged.rename(final)
            except IntegrityError:
                continue  # another process took this number
            return _info(row)
        raise RuntimeError("could not allocate a version number")

    def get(self, version: str) -> VersionInfo:
        """One version, or VersionNotFound."""
        with self.db.session() as session:
            row = session.get(ModelVersion, version)
            if row is None:
                raise VersionNotFound(version)
            return _info(row)

    def list(self) -> list[VersionInfo]:
        """All versions, newest first."""
        with self.db.session() as session:
            rows = session.scalars(select(ModelVersion).order_by(ModelVersion.number.desc()))
            return [_info(r) for r in rows]

    def pending(self, parent: str) -> VersionInfo | None:
        """The challenger pending a second look against `parent` (see `pending_challenger`)."""
        with self.db.session() as session:
            row = pending_challenger(session, parent)
            return _info(row) if row else None

    def champion(self) -> VersionInfo | None:
        """The version the champion alias points at."""
        with self.db.session() as session:
            alias = session.get(ModelAlias, CHAMPION)
            if alias is None:
                return None
            row = session.get(ModelVersion, alias.version)
            return _info(row) if row else None

    def update_metrics(self, session: Session, version: str, metrics: dict[str, Any]) -> None:
        """Merge evaluation metrics into a version's record inside the caller's transaction."""
        row = session.get(ModelVersion, version)
        if row is None:
            raise VersionNotFound(version)
        row.metrics = {**(row.metrics or {}), **metrics}

    def mark(self, session: Session, version: str, *, status: VersionStatus) -> None:
        """Set a version's status (rejected, …) inside the caller's transaction."""
        row = session.get(ModelVersion, version)
        if row is None:
            raise VersionNotFound(version)
        row.status = status

    def promote(self, version: str, *, cause: Cause = MANUAL) -> VersionInfo:
        """Point the champion alias at `version`, in one transaction with its event."""
        with self.db.session() as session:
            return flip_champion(session, version, cause=cause)

    def rollback_target(self) -> str:
        """The champion before the current one in the event history; NoChampion if none."""
        with self.db.session() as session:
            return _rollback_target(session)

    def rollback(self, *, cause: Cause = MANUAL, to: str | None = None) -> VersionInfo:
        """Point the champion alias back at the champion before it in the event history.

        `to`: the target the caller checked (it loads); NoChampion if the history moved since.
        """
        with self.db.session() as session:
            session.get(ModelAlias, CHAMPION, with_for_update=True)  # one rollback at a time
            target = _rollback_target(session)
            if to is not None and to != target:
                raise NoChampion(f"the champion changed meanwhile: {target} is now before it")
            return flip_champion(session, target, cause=cause, kind=EventKind.ROLLED_BACK)


def _rollback_target(session: Session) -> str:
    alias = session.get(ModelAlias, CHAMPION)
    if alias is None:
        raise NoChampion("no champion yet: nothing to roll back")
    history = champion_history(session)
    if not history or history[-1] != alias.version:
        history.append(alias.version)  # a champion flipped without an event (before 0004)
    if len(history) < 2:
        raise NoChampion(f"{alias.version} is the first champion: nothing to roll back to")
    return history[-2]


def pending_challenger(session: Session, parent: str) -> ModelVersion | None:
    """The newest version of `parent`'s children that is pending a second look, if any."""
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.parent == parent, ModelVersion.status == PENDING)
        .order_by(ModelVersion.number.desc())
        .limit(1)
    ).first()


def flip_champion(
    session: Session,
    version: str,
    *,
    cause: Cause = MANUAL,
    kind: EventKind = EventKind.PROMOTED,
) -> VersionInfo:
    """Point the champion alias at `version` inside the caller's transaction, with its event
    (`kind`: a promotion, or a rollback)."""
    row = session.get(ModelVersion, version)
    if row is None:
        raise VersionNotFound(version)
    now = utcnow()
    alias = session.get(ModelAlias, CHAMPION, with_for_update=True)
    record_event(session, kind, version, previous=alias.version if alias else None, cause=cause)
    if alias is None:
        session.add(ModelAlias(name=CHAMPION, version=version, previous=None, updated_at=now))
    elif alias.version != version:
        old = session.get(ModelVersion, alias.version)
        if old is not None:
            old.status = VersionStatus.ARCHIVED
        # A challenger pending against the old champion will never get its second look.
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.parent == alias.version, ModelVersion.status == PENDING)
            .values(status=VersionStatus.ARCHIVED)
        )
        alias.previous, alias.version, alias.updated_at = alias.version, version, now
    row.status = VersionStatus.CHAMPION
    row.promoted_at = now
    session.flush()
    return _info(row)
