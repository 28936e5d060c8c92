"""Embeddings in their own table on the real stores, SQLite and PostgreSQL: written beside their
prediction, read by the monitor's window, deleted by gc before the rows, gone with an erasure,
and moved by migration 0008 (and back)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text

from core.registry import Registry
from core.retention import collect
from core.settings import MonitorSettings, RetentionSettings, Settings
from core.store.db import Database, upgrade
from core.store.erasure import erase_rows, plan_erasure
from core.store.monitoring import stream_window
from core.store.predictions import insert_predictions, submit_feedback
from core.store.tables import Prediction, PredictionEmbedding
from tests.factories import prediction_row

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[Database]:
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def vector(i: int) -> bytes:
    return np.full(4, i, dtype="<f4").tobytes()


def rows(prefix: str, n: int, *, days: float, every: int = 1) -> list[dict[str, object]]:
    """`n` predictions of v1 made `days` ago, every `every`-th with an embedding."""
    start = NOW - timedelta(days=days)
    return [
        prediction_row(
            f"{prefix}{i:02d}",
            created_at=start + timedelta(seconds=i),
            embedding=vector(i) if i % every == 0 else None,
        )
        for i in range(n)
    ]


def embedded(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(PredictionEmbedding.prediction_id)))


def test_embeddings_are_written_beside_their_rows_and_read_by_the_window(store: Database) -> None:
    insert_predictions(store, rows("p", 6, days=1, every=2))
    assert embedded(store) == {"p00", "p02", "p04"}
    window = list(stream_window(store, version="v1", newest=4))
    assert [r.id for r in window] == ["p02", "p03", "p04", "p05"]
    assert [r.embedding for r in window] == [vector(2), None, vector(4), None]
    oldest = list(stream_window(store, version="v1", oldest=2, outputs=True))
    assert [r.embedding for r in oldest] == [vector(0), None]
    assert oldest[0].output == {"label": "positive"}


def test_gc_deletes_embeddings_first_and_keeps_the_protected(
    store: Database, tmp_path: Path
) -> None:
    registry = Registry(store, tmp_path / "artifacts")
    registry.register(registry.staging_dir(), task="classification", labels=["a"], base_model="t")
    registry.promote("v1")
    insert_predictions(store, rows("ref", 20, days=90))  # v1's reference window (size 20)
    insert_predictions(store, rows("old", 5, days=60))
    insert_predictions(store, rows("mid", 5, days=10))
    insert_predictions(store, rows("new", 5, days=1))
    submit_feedback(store, prediction_id="mid01", rating=5)
    settings = Settings(
        home=tmp_path,
        database_url=store.url,
        retention=RetentionSettings(batch_size=2),
        monitor=MonitorSettings(reference_size=20),
    )
    result = collect(settings, store)
    assert list(result.counts)[:2] == ["embeddings", "predictions"]  # the order swept
    assert result.counts["embeddings"] == 5 + 4 and result.counts["predictions"] == 5
    expected = {f"ref{i:02d}" for i in range(20)} | {"mid01"} | {f"new{i:02d}" for i in range(5)}
    assert embedded(store) == expected
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 20 + 5 + 5


def test_an_erasure_deletes_the_embeddings_of_its_predictions(store: Database) -> None:
    insert_predictions(store, rows("p", 4, days=1))
    erasure = plan_erasure(store, ["p00", "p01"])
    assert erasure.embeddings == 2
    erase_rows(store, erasure)
    assert embedded(store) == {"p02", "p03"}
    assert plan_erasure(store, ["p00"]).embeddings == 0
    assert [r.embedding for r in stream_window(store, version="v1", oldest=4)] == [
        None,
        None,
        vector(2),
        vector(3),
    ]


def test_migration_0008_moves_embeddings_out_and_back(url: str) -> None:
    upgrade(url, "0007")
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            for pid, blob in (("a", vector(1)), ("b", None)):
                conn.execute(
                    text(
                        "INSERT INTO prediction (id, created_at, model_version, task, input_hash, "
                        "output, latency_ms, truncated, embedding) VALUES (:id, :at, 'v1', "
                        "'classification', 'h', '{}', 1.0, false, :blob)"
                    ),
                    {"id": pid, "at": NOW, "blob": blob},
                )
        upgrade(url, "0008")
        [row] = list(stream_window(db, version="v1", oldest=1))
        assert (row.id, row.embedding) == ("a", vector(1))
        assert embedded(db) == {"a"}
        with db.session() as session:
            stored = session.scalar(select(PredictionEmbedding.created_at))
        assert stored is not None and abs(stored - NOW) < timedelta(seconds=1)
        from alembic import command

        from core.store.db import alembic_config

        command.downgrade(alembic_config(url), "0007")
        with db.engine.connect() as conn:
            back = dict(conn.execute(text("SELECT id, embedding FROM prediction")).all())
        assert back == {"a": vector(1), "b": None}
    finally:
        db.dispose()
