"""Retention: each kind goes past its age and not before, the protected classes stay, batches
are bounded in rows and in time, embeddings go first, a dry run deletes nothing and counts the
same, SQLite gives the space back."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, select, update

from core.golden import write_golden
from core.registry import Registry
from core.retention import collect
from core.settings import MonitorSettings, RetentionSettings, Settings
from core.states import RunState, VersionStatus
from core.store import retention as store
from core.store import review
from core.store.db import Database
from core.store.predictions import insert_predictions, submit_feedback
from core.store.runs import runs_folder
from core.store.tables import (
    Feedback,
    ModelVersion,
    MonitorCheck,
    Prediction,
    PredictionEmbedding,
    RetrainRun,
    ReviewLease,
)
from tests.factories import prediction_row
from tuneloop.cli import main

NOW = datetime.now(UTC)
EMBEDDING = b"\x00" * 1536
REFERENCE = 20


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def settings_for(tmp_path: Path, url: str, **retention: Any) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=url,
        retention=RetentionSettings(**{"feedback_days": 50.0, "batch_size": 7, **retention}),
        monitor=MonitorSettings(reference_size=REFERENCE),
    )


def version(registry: Registry, *, parent: str | None, status: VersionStatus, days: float) -> str:
    info = registry.register(
        registry.staging_dir(),
        task="classification",
        labels=["a", "b"],
        base_model="t",
        parent=parent,
    )
    with registry.db.session() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == info.version)
            .values(status=status, created_at=ago(days))
        )
    return info.version


def predictions(prefix: str, n: int, *, days: float, ver: str = "v2") -> list[dict[str, Any]]:
    return [
        prediction_row(
            f"{prefix}{i}",
            version=ver,
            created_at=ago(days) + timedelta(seconds=i),
            embedding=EMBEDDING,
        )
        for i in range(n)
    ]


def run_row(db: Database, artifacts: Path, *, made: str | None, days: float) -> Path:
    run = RetrainRun(trigger="manual", state=RunState.REJECTED, version=made, finished_at=ago(days))
    with db.session() as session:
        session.add(run)
        session.flush()
        folder = runs_folder(artifacts) / run.id
    folder.mkdir(parents=True)
    (folder / "dataset.jsonl").write_text("{}\n")
    return folder


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str, db: Database, registry: Registry) -> dict[str, Any]:
    """v2 champion (v1, archived, its parent), v3 rejected and v4 archived (old), v5 rejected
    (new); rows of every age and kind."""
    artifacts = tmp_path / "artifacts"
    version(registry, parent=None, status=VersionStatus.ARCHIVED, days=100)  # v1's ancestor
    champion = version(registry, parent="v1", status=VersionStatus.CANDIDATE, days=100)
    registry.promote(champion)
    rejected = version(registry, parent=champion, status=VersionStatus.REJECTED, days=60)
    archived = version(registry, parent=champion, status=VersionStatus.ARCHIVED, days=60)
    fresh = version(registry, parent=champion, status=VersionStatus.REJECTED, days=1)
    insert_predictions(db, predictions("ref", REFERENCE, days=100))  # the reference window
    insert_predictions(db, predictions("old", 30, days=60))
    insert_predictions(db, predictions("mid", 10, days=10))
    insert_predictions(db, predictions("new", 10, days=1))
    rated = ["old0", "old1"]
    for pid in rated:
        submit_feedback(db, prediction_id=pid, rating=5)
    golden_fb = submit_feedback(db, prediction_id="mid0", rating=1).id
    with db.session() as session:  # both feedback rows old enough to go, but one is golden
        session.execute(update(Feedback).values(created_at=ago(55)))
    write_golden(
        artifacts, [{"text": "t", "label": "a"}], source="feedback", feedback_ids=[golden_fb]
    )
    report = artifacts / "reports" / "old.json.gz"
    report.parent.mkdir(parents=True)
    report.write_bytes(gzip.compress(b"{}"))
    with db.session() as session:
        session.add(MonitorCheck(id="old-check", created_at=ago(100), report_path=str(report)))
        session.add(MonitorCheck(id="new-check", created_at=ago(1)))
    return {
        "settings": settings_for(tmp_path, sqlite_url),
        "champion": champion,
        "ancestor": "v1",
        "rejected": rejected,
        "archived": archived,
        "fresh": fresh,
        "report": report,
        "lineage_run": run_row(db, artifacts, made=champion, days=60),
        "old_run": run_row(db, artifacts, made=rejected, days=60),
        "new_run": run_row(db, artifacts, made=fresh, days=1),
        "golden_feedback": golden_fb,
    }


def ids(db: Database, *where: Any) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Prediction.id).where(*where)))


def embedded(db: Database, prefix: str) -> set[str]:
    """The predictions whose id starts with `prefix` that still have an embedding."""
    key = PredictionEmbedding.prediction_id
    with db.session() as session:
        return set(session.scalars(select(key).where(key.like(f"{prefix}%"))))


def test_each_kind_goes_past_its_age_and_not_before(world: dict[str, Any], db: Database) -> None:
    result = collect(world["settings"], db)
    # 30 old predictions, 2 rated: 28 go; the 10 at 10 days stay (30-day age), embedding deleted.
    assert result.counts["predictions"] == 28
    assert result.counts["embeddings"] == 28 + 9  # the old rows' and the mid rows' (mid0 rated)
    assert ids(db, Prediction.id.like("old%")) == {"old0", "old1"}
    assert embedded(db, "old") == {"old0", "old1"}
    assert len(ids(db, Prediction.id.like("mid%"))) == 10
    assert embedded(db, "mid") == {"mid0"}
    assert len(embedded(db, "new")) == 10
    assert result.counts["feedback"] == 2  # the two on old0/old1; the golden one stays
    with db.session() as session:
        assert set(session.scalars(select(Feedback.id))) == {world["golden_feedback"]}
        assert set(session.scalars(select(MonitorCheck.id))) == {"new-check"}
    assert not world["report"].exists()
    assert result.counts["checks"] == 1 and result.counts["run_snapshots"] == 1
    assert not world["old_run"].exists() and world["new_run"].exists()
    assert result.counts["artifacts"] == 2
    models = world["settings"].artifacts / "models"
    assert not (models / world["rejected"]).exists() and not (models / world["archived"]).exists()
    assert (models / world["fresh"]).exists()  # rejected, but younger than 14 days


def test_the_protected_classes_stay_whatever_their_age(world: dict[str, Any], db: Database) -> None:
    settings = settings_for(
        world["settings"].home, db.url, embeddings_days=0.001, predictions_days=0.001,
        feedback_days=0.001, artifacts_days=0.001, run_snapshots_days=0.001,
    )  # fmt: skip
    collect(settings, db)
    # The reference window of the champion, whole (embeddings too); the golden feedback and
    # its prediction.
    assert len(embedded(db, "ref")) == REFERENCE
    assert ids(db, Prediction.id.like("mid%")) == {"mid0"}
    with db.session() as session:
        assert set(session.scalars(select(Feedback.id))) == {world["golden_feedback"]}
    models = settings.artifacts / "models"
    assert (models / world["champion"]).exists() and (models / world["ancestor"]).exists()
    assert world["lineage_run"].exists()  # the run that made the champion
    assert not (models / world["fresh"]).exists()


def test_feedback_keeps_its_prediction_until_the_feedback_itself_goes(
    world: dict[str, Any], db: Database
) -> None:
    collect(settings_for(world["settings"].home, db.url, feedback_days=0.0), db)
    assert {"old0", "old1"} <= ids(db)  # feedback kept forever: its predictions too


def counts(db: Database, artifacts: Path) -> tuple[Any, ...]:
    with db.session() as session:
        rows = tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (Prediction, Feedback, MonitorCheck)
        )
        vectors = session.scalar(select(func.count()).select_from(PredictionEmbedding))
    return (*rows, vectors, sorted(str(p) for p in artifacts.rglob("*")))


def test_a_dry_run_deletes_nothing_and_counts_what_the_real_run_deletes(
    world: dict[str, Any], db: Database
) -> None:
    settings = world["settings"]
    before = counts(db, settings.artifacts)
    dry = collect(settings, db, dry_run=True)
    assert counts(db, settings.artifacts) == before
    real = collect(settings, db)
    assert dry.counts == real.counts and sum(real.counts.values()) > 0
    assert dry.vacuum_steps is None


def transactions(db: Database, run: Any) -> list[list[tuple[str, int]]]:
    """(table, rows) of each DELETE, grouped by the transaction that committed it, in order."""
    done: list[list[tuple[str, int]]] = [[]]

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        words = statement.split()
        if words[0] == "DELETE":
            done[-1].append((words[2], context.rowcount))

    def committed(conn: Any) -> None:
        if done[-1]:
            done.append([])

    event.listen(db.engine, "after_cursor_execute", seen)
    event.listen(db.engine, "commit", committed)
    try:
        run()
    finally:
        event.remove(db.engine, "after_cursor_execute", seen)
        event.remove(db.engine, "commit", committed)
    return [t for t in done if t]


def test_each_transaction_writes_at_most_one_batch_embeddings_first(
    world: dict[str, Any], db: Database
) -> None:
    found: list[Any] = []
    done = transactions(db, lambda: found.append(collect(world["settings"], db)))
    assert all(len(t) == 1 for t in done)  # each batch of 7 is one chunk, one transaction
    writes = [write for t in done for write in t]
    assert all(rows <= 7 for _, rows in writes)  # batch_size 7
    tables = [table for table, _ in writes]
    last_embedding = max(i for i, table in enumerate(tables) if table == "prediction_embedding")
    assert tables.index("prediction") > last_embedding  # the rows then deleted are narrow
    embeddings = [rows for table, rows in writes if table == "prediction_embedding"]
    assert embeddings == [7, 7, 7, 7, 7, 2]  # 37 rows
    assert [rows for table, rows in writes if table == "prediction"] == [7, 7, 7, 7]  # 28 rows
    assert found[0].batches == len(writes)


@pytest.mark.parametrize(("batch_ms", "per_transaction"), [(1e-6, 2), (1e6, 4)])
def test_a_transaction_stops_taking_chunks_once_it_held_the_lock_its_time(
    world: dict[str, Any],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    batch_ms: float,
    per_transaction: int,
) -> None:
    """Chunks of 3 rows in batches of 12: a tiny time lets a transaction write one chunk after
    the first (the clock starts once the lock is surely held), a long one all four; either way
    the walk resumes after the last row done, so nothing is skipped."""
    monkeypatch.setattr(store, "CHUNK", 3)
    settings = settings_for(world["settings"].home, db.url, batch_size=12, batch_ms=batch_ms)
    found: list[Any] = []
    done = transactions(db, lambda: found.append(collect(settings, db)))
    assert all(rows <= 3 for t in done for _, rows in t)
    assert max(len(t) for t in done) == per_transaction
    assert found[0].counts["embeddings"] == 37 and found[0].counts["predictions"] == 28
    assert embedded(db, "old") == {"old0", "old1"} and embedded(db, "mid") == {"mid0"}


def test_a_new_sqlite_store_gives_freed_pages_back(
    tmp_path: Path, sqlite_url: str, db: Database
) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2  # INCREMENTAL
    insert_predictions(db, predictions("p", 2000, days=60))
    path = Path(db.url.split("///", 1)[1])
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    full = path.stat().st_size
    result = collect(settings_for(tmp_path, sqlite_url, batch_size=1000, vacuum_pages=50), db)
    assert result.counts["predictions"] == 2000  # no champion: no reference window to keep
    assert result.vacuum_steps and result.vacuum_steps > 1  # bounded steps, not one
    assert path.stat().st_size < full / 4
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0


def test_embeddings_go_no_later_than_the_rows() -> None:
    with pytest.raises(ValueError, match="embeddings_days"):
        RetentionSettings(embeddings_days=40, predictions_days=30)
    RetentionSettings(embeddings_days=400, predictions_days=0)  # rows kept forever: any age


def test_gc_command_reports_counts_per_kind(world: dict[str, Any], monkeypatch) -> None:
    settings = world["settings"]
    monkeypatch.setenv("TUNELOOP_HOME", str(settings.home))
    monkeypatch.setenv("TUNELOOP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TUNELOOP_RETENTION_FEEDBACK_DAYS", "50")
    monkeypatch.setenv("TUNELOOP_MONITOR_REFERENCE_SIZE", str(REFERENCE))
    result = CliRunner().invoke(main, ["gc", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "predictions    would delete 28" in result.output
    assert "feedback       would delete 2" in result.output
    assert "review_leases  would delete 0" in result.output
    result = CliRunner().invoke(main, ["gc"])
    assert "predictions    deleted 28" in result.output and "incremental vacuum" in result.output
    monkeypatch.setenv("TUNELOOP_RETENTION_FEEDBACK_DAYS", "0")
    assert "feedback       kept forever" in CliRunner().invoke(main, ["gc"]).output


def test_review_leases_go_an_age_after_they_expired(
    tmp_path: Path, sqlite_url: str, db: Database
) -> None:
    settings = settings_for(tmp_path, sqlite_url, review_leases_days=1.0)
    old = [f"old{i}" for i in range(10)]
    review.lease(db, old, reviewer="ann", seconds=60, now=ago(3))
    review.lease(db, ["recent"], reviewer="ann", seconds=60, now=ago(0.5))
    review.lease(db, ["held"], reviewer="ann", seconds=600)
    dry = collect(settings, db, dry_run=True)
    assert dry.counts["review_leases"] == 10 and len(review.blocked(db, old, reviewer="ann")) == 10
    result = collect(settings, db)
    assert result.counts["review_leases"] == 10
    with db.session() as session:
        assert set(session.scalars(select(ReviewLease.prediction_id))) == {"recent", "held"}
    # Gone rows leave their items free: another reviewer, or the one who had them, leases them.
    assert set(review.lease(db, old, reviewer="ann", seconds=60)) == set(old)
    kept = settings_for(tmp_path, sqlite_url, review_leases_days=0.0)
    review.lease(db, ["older"], reviewer="bob", seconds=60, now=ago(300))
    assert "review_leases" not in collect(kept, db).counts
    assert review.blocked(db, ["older"], reviewer="bob") == {"older"}
