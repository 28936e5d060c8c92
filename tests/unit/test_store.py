"""Store and registry on a migrated SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from core.registry import PENDING, NoChampion, Registry, VersionNotFound
from core.store.db import Database, current_revision
from core.store.prediction_reads import get_prediction
from core.store.predictions import (
    IdempotencyConflict,
    InvalidLabel,
    PredictionNotFound,
    insert_predictions,
    submit_feedback,
)
from tests.factories import prediction_row, register_version


def test_migrations_create_every_table(sqlite_url: str, db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "prediction",
        "feedback",
        "model_version",
        "model_alias",
        "retrain_run",
        "monitor_check",
    } <= tables
    assert current_revision(sqlite_url) is not None


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_versions_are_numbered_and_artifacts_appear_by_rename(registry: Registry) -> None:
    assert register_version(registry) == "v1"
    assert register_version(registry, parent="v1") == "v2"
    info = registry.get("v2")
    assert Path(info.artifact_path).name == "v2" and info.parent == "v1"
    assert (Path(info.artifact_path) / "model.bin").read_text() == "weights"
    assert not any(p.name.startswith(".staging") for p in registry.models_dir.iterdir())
    assert [v.version for v in registry.list()] == ["v2", "v1"]


def test_promote_flips_the_alias_and_rollback_flips_it_back(registry: Registry) -> None:
    register_version(registry)
    register_version(registry)
    assert registry.champion() is None
    registry.promote("v1")
    registry.promote("v2")
    champion = registry.champion()
    assert champion is not None and champion.version == "v2"
    assert registry.get("v1").status == "archived"
    assert registry.rollback().version == "v1"
    assert registry.get("v1").status == "champion"


def test_a_new_champion_archives_the_challenger_pending_against_the_old_one(
    registry: Registry,
) -> None:
    register_version(registry)
    registry.promote("v1")
    register_version(registry, parent="v1")
    register_version(registry, parent="v1")
    with registry.db.session() as session:
        registry.mark(session, "v2", status=PENDING)
    registry.promote("v3")
    assert registry.get("v2").status == "archived"
    assert registry.get("v3").status == "champion"


def test_rollback_without_history_and_unknown_versions_raise(registry: Registry) -> None:
    with pytest.raises(NoChampion):
        registry.rollback()
    with pytest.raises(VersionNotFound):
        registry.promote("v9")


def test_feedback_is_validated_against_the_prediction(db: Database, registry: Registry) -> None:
    register_version(registry)
    insert_predictions(db, [prediction_row("p1")])
    receipt = submit_feedback(db, prediction_id="p1", rating=1, label="negative")
    assert receipt.model_version == "v1" and not receipt.replayed
    stored = get_prediction(db, "p1")
    assert stored is not None and stored["feedback"][0]["label"] == "negative"
    with pytest.raises(PredictionNotFound):
        submit_feedback(db, prediction_id="nope", rating=5)
    with pytest.raises(InvalidLabel):
        submit_feedback(db, prediction_id="p1", rating=1, label="neutral")
    assert submit_feedback(
        db, prediction_id="p1", rating=1, label="neutral", allow_new_labels=True
    ).id


def test_idempotency_key_replays_the_same_id_and_refuses_reuse(
    db: Database, registry: Registry
) -> None:
    register_version(registry)
    insert_predictions(db, [prediction_row("p1"), prediction_row("p2")])
    first = submit_feedback(db, prediction_id="p1", rating=5, idempotency_key="k")
    again = submit_feedback(db, prediction_id="p1", rating=5, idempotency_key="k")
    assert again.id == first.id and again.replayed
    stored = get_prediction(db, "p1")
    assert stored is not None and len(stored["feedback"]) == 1
    with pytest.raises(IdempotencyConflict):
        submit_feedback(db, prediction_id="p2", rating=5, idempotency_key="k")
    with pytest.raises(IdempotencyConflict):  # same prediction, another body
        submit_feedback(db, prediction_id="p1", rating=1, idempotency_key="k")
