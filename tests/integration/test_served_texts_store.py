"""A student's transfer texts read from the real stores, SQLite and PostgreSQL: a version's
logged texts, newest first, each once, less an exclusion set, the stream left after `limit`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.store.db import Database, upgrade
from core.store.prediction_reads import served_texts
from core.store.predictions import insert_predictions
from tests.factories import prediction_row

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def test_served_texts_newest_first_each_once_without_the_excluded(store: Database) -> None:
    texts: list[str | None] = [f"text {i % 1500}" for i in range(3000)]  # each twice
    texts[2999] = None  # the newest was erased
    records = []
    for i, text in enumerate(texts):
        record = prediction_row(f"p{i}", text=text or "", created_at=T0 + timedelta(seconds=i))
        records.append(record | {"input_text": text})
    records.append(prediction_row("other", text="v2's text", version="v2"))
    insert_predictions(store, records)
    got = served_texts(store, version="v1", limit=1200, exclude={"text 1498"})
    # Newest first: 2998 is "text 1498" (excluded), then 2997 .. down; 1,200 distinct texts.
    assert got[:3] == ["text 1497", "text 1496", "text 1495"]
    assert len(got) == len(set(got)) == 1200 and "text 1498" not in got
    assert "v2's text" not in got
    # "text 1499"'s newest prediction was erased: it ranks by its older one.
    newest = [f"text {i}" for i in range(1498, -1, -1)]
    assert served_texts(store, version="v1", limit=5000) == [*newest, "text 1499"]
