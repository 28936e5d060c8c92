"""A store made by the first release's schema (0001) migrates to head with its data readable.

tests/unit/test_events.py covers 0003 -> 0004's backfill; this starts at 0001 and reads every kind
of row through the store's own read functions afterwards. 0008 moves embeddings to their own
table and back (on PostgreSQL too: tests/integration/test_embeddings_store.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from alembic import command
from alembic.script import ScriptDirectory

from core.registry import Registry
from core.store.db import Database, alembic_config, current_revision, upgrade
from core.store.monitoring import stream_window
from core.store.prediction_reads import feedback_rows, get_prediction
from core.store.run_queries import get_run
from tests.factories import release_0001_store


def test_a_0001_store_upgrades_to_head_keeping_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    release_0001_store(url)
    assert current_revision(url) == "0001"
    upgrade(url)
    assert (
        current_revision(url) == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    )
    db = Database(url)
    try:
        registry = Registry(db, tmp_path / "artifacts")
        champion = registry.champion()
        assert champion is not None and champion.version == "v1"
        assert champion.metrics == {"accuracy": 0.8} and champion.labels == ["negative", "positive"]
        prediction = get_prediction(db, "p1")
        assert prediction is not None and prediction["input"] == "great product"
        assert prediction["output"]["label"] == "positive" and prediction["truncated"] is False
        [given] = prediction["feedback"]
        assert given["label"] == "negative" and given["key_name"] is None
        assert given["excluded_at"] is None
        [row] = feedback_rows(db)
        assert (row["text"], row["label"], row["predicted_label"]) == (
            "great product",
            "negative",
            "positive",
        )
        run = get_run(db, "r1")
        assert run.state == "rejected" and run.verdict == {"promote": False}
        assert run.check_id is None
        [window] = list(stream_window(db, version="v1", newest=10))
        assert np.frombuffer(window.embedding, dtype="<f4").tolist() == [1.0, 2.0]
    finally:
        db.dispose()


def test_0008_moves_embeddings_back_on_downgrade_and_out_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    release_0001_store(url)
    upgrade(url)
    command.downgrade(alembic_config(url), "0007")
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            [(blob,)] = conn.exec_driver_sql("SELECT embedding FROM prediction").all()
            tables = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
            assert "prediction_embedding" not in set(tables.scalars())
        assert np.frombuffer(blob, dtype="<f4").tolist() == [1.0, 2.0]
        upgrade(url)
        [window] = list(stream_window(db, version="v1", newest=10))
        assert window.embedding == blob
        with db.engine.connect() as conn:  # the wide column is gone, not left empty
            columns = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(prediction)")}
        assert "embedding" not in columns
    finally:
        db.dispose()
