"""The store's tables (SQLAlchemy 2): predictions and their embeddings, feedback, review leases,
versions and their events, runs, checks, API keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    and_,
    false,
    or_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.states import CheckDecision, RunState, VersionStatus


def utcnow() -> datetime:
    """Timezone-aware now, the one clock of the store."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random UUID as text."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Prediction(Base):
    __tablename__ = "prediction"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    model_version: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32), default="classification")
    input_text: Mapped[str | None] = mapped_column(Text)
    input_hash: Mapped[str] = mapped_column(String(64))
    # Task-shaped output: {"label", "scores"} for classification, {"text"} for generation.
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    label: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    n_tokens: Mapped[int | None] = mapped_column(Integer)
    # Which arm served it while a canary ran ("champion" or "canary"); NULL before migration 0006.
    arm: Mapped[str | None] = mapped_column(String(16))
    # A shadow's prediction (arm "shadow", never answered): the champion's prediction of the same
    # request it mirrors, so the two labels compare; NULL otherwise and before migration 0007.
    shadow_of: Mapped[str | None] = mapped_column(String(36), index=True)

    __table_args__ = (Index("ix_prediction_version_created", "model_version", "created_at"),)


class PredictionEmbedding(Base):
    """The pooled embedding of a prediction, kept for a sampled share only. A table of its own:
    it is most of a prediction's bytes and goes first, so gc deletes narrow rows here instead
    of rewriting wide prediction rows.

    Keyed by (the prediction's created_at, its id), found by both: that key grows with time, so
    an insert appends to it, where a key of random ids alone would dirty a page per row and make
    the writer's WAL checkpoints come twice as often (p99 of its inserts doubled). So no foreign
    key either (it would need that index): gc deletes a prediction's embedding before the row."""

    __tablename__ = "prediction_embedding"

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # float32 little-endian bytes.
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


# A prediction's embedding, found by the embedding's key.
EMBEDDING_OF = and_(
    PredictionEmbedding.created_at == Prediction.created_at,
    PredictionEmbedding.prediction_id == Prediction.id,
)


def embeddings_keyed(keys: Iterable[tuple[datetime, str]]) -> ColumnElement[bool]:
    """The embeddings with these (created_at, prediction_id) keys: an OR of equalities, which
    SQLite looks up in the key's index term by term, where a row-value IN scans the table."""
    e = PredictionEmbedding
    return or_(false(), *(and_(e.created_at == at, e.prediction_id == pid) for at, pid in keys))


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    prediction_id: Mapped[str] = mapped_column(ForeignKey("prediction.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rating: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(128))
    preferred_output: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # The API key that gave it (NULL in open mode), so a poisoned batch can be found; excluded
    # rows stay as evidence but no longer train, gate or count in the monitor.
    key_name: Mapped[str | None] = mapped_column(String(64), index=True)
    excluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # `user` (whoever rated a prediction they got) or `review` (a reviewer working the queue);
    # NULL on rows from before migration 0005, which were all users'.
    source: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (Index("ix_feedback_created", "created_at"),)


class ReviewLease(Base):
    """A prediction offered to one reviewer until `expires_at`; the primary key is the arbiter
    between reviewers racing for it. No foreign key: retention deletes old predictions without
    knowing of leases, and a lease on a deleted prediction is never read (no window holds it)."""

    __tablename__ = "review_lease"

    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    leased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelVersion(Base):
    __tablename__ = "model_version"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    parent: Mapped[str | None] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(32))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    artifact_path: Mapped[str] = mapped_column(Text)
    base_model: Mapped[str] = mapped_column(Text)
    dataset_hash: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.CANDIDATE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ModelAlias(Base):
    """Named pointer to a version; `champion` is the one the api serves."""

    __tablename__ = "model_alias"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_version.version"))
    previous: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelEvent(Base):
    """One change to the registry (the audit trail), written in the change's own transaction."""

    __tablename__ = "model_event"

    # An integer key: events of the same instant keep the order they were written in.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32), index=True)
    # The champion when the event happened (for a promotion or rollback: the one replaced).
    previous: Mapped[str | None] = mapped_column(String(32))
    # An API key's name, `admin-token`, `cli`, or `policy` for a retrain run's own decision.
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(String(36))
    check_id: Mapped[str | None] = mapped_column(String(36))


class Canary(Base):
    """A challenger serving a share of the traffic beside the champion (a canary) or mirroring it
    (a shadow), and how it ended."""

    __tablename__ = "canary"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    version: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[str] = mapped_column(String(32))
    share: Mapped[float] = mapped_column(Float)
    # `canary` (serves a share of the clients) or `shadow` (runs on a share of the requests
    # beside the champion, its answers stored, never returned); one of either at a time.
    mode: Mapped[str] = mapped_column(String(16), default="canary", server_default="canary")
    # 1 while it runs, NULL after: the unique constraint allows one canary at a time.
    active_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # promoted, aborted, expired or stopped; NULL while it runs.
    outcome: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    # The last look: the metric judged, each arm's items and means, the test's statistics.
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RetrainRun(Base):
    __tablename__ = "retrain_run"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    trigger: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=RunState.QUEUED, index=True)
    # 1 while queued or running, NULL after: the unique constraint allows one run in flight.
    active_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    loss: Mapped[float | None] = mapped_column(Float)
    champion_version: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(32))
    dataset_hash: Mapped[str | None] = mapped_column(String(64))
    dataset_path: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # The monitor check whose policy started the run (NULL for a manual run).
    check_id: Mapped[str | None] = mapped_column(String(36))


class MonitorCheck(Base):
    __tablename__ = "monitor_check"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    model_version: Mapped[str | None] = mapped_column(String(32))
    window: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drift_share: Mapped[float | None] = mapped_column(Float)
    embedding_drift: Mapped[float | None] = mapped_column(Float)
    drift_detected: Mapped[bool] = mapped_column(Boolean, default=False)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    estimated_accuracy: Mapped[float | None] = mapped_column(Float)
    report_path: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(16), default=CheckDecision.NONE)
    reason: Mapped[str] = mapped_column(Text, default="")
    duration_seconds: Mapped[float | None] = mapped_column(Float)


class ApiKey(Base):
    """An API key: only its SHA-256 is kept, and a short prefix to tell keys apart."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Never reused, even after revocation: feedback names its key by it.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Rate limits per second (None: none); the api's key table carries them to every replica.
    requests_per_second: Mapped[float | None] = mapped_column(Float)
    texts_per_second: Mapped[float | None] = mapped_column(Float)
