"""Review leases and the queue on the real stores: SQLite and PostgreSQL, two threads racing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.registry import Registry
from core.review_queue import QueueOptions, next_items
from core.store import review
from core.store.db import Database, upgrade
from core.store.prediction_reads import get_prediction
from core.store.predictions import insert_predictions, submit_feedback
from core.store.retention import Batch, lease_sweep
from tests.factories import prediction_row

OPTIONS = QueueOptions(window=500, reference=500, lease_seconds=600, rule="kcenter", pool_factor=4)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def champion(db: Database, tmp_path: Path, labels: list[str]) -> Registry:
    """A registered classification champion (the queue reads only its row, not its weights)."""
    registry = Registry(db, tmp_path / "artifacts")
    staged = registry.staging_dir()
    (staged / "config.json").write_text("{}")
    version = registry.register(staged, task="classification", labels=labels, base_model="x")
    registry.promote(version.version)
    return registry


def seed(db: Database, n: int, labels: list[str], *, seed: int = 0) -> list[str]:
    """`n` predictions of v1 with random scores and embeddings, oldest first."""
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    rows = []
    for i in range(n):
        probs = rng.dirichlet(np.ones(len(labels)))
        row = prediction_row(
            f"p{i:03d}",
            text=f"text {i}",
            label=labels[int(probs.argmax())],
            created_at=start + timedelta(seconds=i),
            embedding=rng.normal(size=8).astype("<f4").tobytes(),
        )
        row["output"] = {
            "label": row["label"],
            "scores": dict(zip(labels, probs.tolist(), strict=True)),
        }
        rows.append(row)
    insert_predictions(db, rows)
    return [r["id"] for r in rows]


def test_a_lease_is_one_reviewers_until_it_expires(store: Database) -> None:
    [pid] = seed(store, 1, ["a", "b"])
    now = datetime.now(UTC)
    assert pid in review.lease(store, [pid], reviewer="ann", seconds=60, now=now)
    assert review.lease(store, [pid], reviewer="bob", seconds=60, now=now) == {}
    assert review.lease(store, [pid], reviewer="ann", seconds=60, now=now) == {}
    later = now + timedelta(seconds=61)
    assert pid in review.lease(store, [pid], reviewer="bob", seconds=60, now=later)
    assert review.blocked(store, [pid], reviewer="carl", now=later) == {pid}


def test_two_threads_racing_never_lease_the_same_item(store: Database) -> None:
    ids = seed(store, 40, ["a", "b"])
    won: dict[str, set[str]] = {}
    barrier = threading.Barrier(2)

    def grab(name: str) -> None:
        barrier.wait()
        won[name] = set(review.lease(store, ids, reviewer=name, seconds=60))

    threads = [threading.Thread(target=grab, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not won["ann"] & won["bob"]
    assert won["ann"] | won["bob"] == set(ids)


def test_two_threads_racing_for_an_expired_lease_one_takes_it(store: Database) -> None:
    [pid] = seed(store, 1, ["a", "b"])
    review.lease(store, [pid], reviewer="old", seconds=10, now=datetime.now(UTC) - timedelta(60))
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def grab(name: str) -> None:
        barrier.wait()
        results.append(bool(review.lease(store, [pid], reviewer=name, seconds=60)))

    threads = [threading.Thread(target=grab, args=(f"r{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_the_queue_leases_disjoint_batches_and_skips_labeled(
    store: Database, tmp_path: Path
) -> None:
    registry = champion(store, tmp_path, ["a", "b"])
    ids = seed(store, 100, ["a", "b"])
    submit_feedback(store, prediction_id=ids[0], rating=1, label="b")
    version = registry.champion()
    assert version is not None
    first = next_items(store, version, n=10, reviewer="ann", options=OPTIONS)
    second = next_items(store, version, n=10, reviewer="bob", options=OPTIONS)
    again = next_items(store, version, n=10, reviewer="ann", options=OPTIONS)
    batches = [{i.prediction_id for i in b} for b in (first, second, again)]
    assert [len(b) for b in batches] == [10, 10, 10]
    assert not (batches[0] & batches[1]) and not (batches[0] & batches[2])
    assert ids[0] not in set().union(*batches)
    assert {i.reason for i in first} <= {"uncertain", "diverse"}
    item = first[0]
    assert item.text and item.label in ("a", "b") and set(item.scores) == {"a", "b"}


def test_rated_down_unlabeled_leads_on_many_labels_only(store: Database, tmp_path: Path) -> None:
    registry = champion(store, tmp_path, ["a", "b", "c"])
    ids = seed(store, 30, ["a", "b", "c"])
    submit_feedback(store, prediction_id=ids[5], rating=1)  # "not this", no label
    submit_feedback(store, prediction_id=ids[6], rating=2, label="c")  # labeled: not offered
    version = registry.champion()
    assert version is not None
    items = next_items(store, version, n=5, reviewer="ann", options=OPTIONS)
    assert items[0].prediction_id == ids[5] and items[0].reason == "rated_down"
    assert ids[6] not in {i.prediction_id for i in items}


def test_review_feedback_is_stored_with_its_source_and_counted(
    store: Database, tmp_path: Path
) -> None:
    registry = champion(store, tmp_path, ["a", "b"])
    ids = seed(store, 10, ["a", "b"])
    predicted = get_prediction(store, ids[1])
    assert predicted is not None
    submit_feedback(
        store,
        prediction_id=ids[1],
        rating=5,
        label=predicted["output"]["label"],
        source="review",
        key_name="ann",
    )
    submit_feedback(store, prediction_id=ids[2], rating=4, key_name="user1")
    stored = get_prediction(store, ids[1])
    assert stored is not None and stored["feedback"][0]["source"] == "review"
    other = get_prediction(store, ids[2])
    assert other is not None and other["feedback"][0]["source"] == "user"
    version = registry.champion()
    assert version is not None
    tally = review.tally(store, version=version.version, since=None, reviewer="ann")
    assert (tally.mine, tally.reviewed, tally.agreement) == (1, 1, 1.0)


def test_gc_deletes_leases_expired_past_the_grace_and_their_items_return(store: Database) -> None:
    ids = seed(store, 3, ["a", "b"])
    now = datetime.now(UTC)
    review.lease(store, ids[:1], reviewer="ann", seconds=60, now=now - timedelta(days=3))
    review.lease(store, ids[1:2], reviewer="ann", seconds=60, now=now - timedelta(days=3))
    assert review.release(store, ids[1], reviewer="ann", now=now - timedelta(days=3))  # a skip
    review.lease(store, ids[2:], reviewer="ann", seconds=600, now=now)
    swept = lease_sweep(store, before=now - timedelta(days=1), batch=Batch(1))
    assert (swept.rows, swept.batches) == (2, 2)
    assert review.blocked(store, ids, reviewer="ann", now=now) == {ids[2]}
    assert set(review.lease(store, ids, reviewer="bob", seconds=60, now=now)) == set(ids[:2])


def test_a_lease_taken_over_while_gc_sweeps_is_kept(store: Database) -> None:
    ids = seed(store, 60, ["a", "b"])
    review.lease(store, ids, reviewer="old", seconds=60, now=datetime.now(UTC) - timedelta(3))
    won: set[str] = set()
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        won.update(review.lease(store, ids, reviewer="bob", seconds=600))

    def gc() -> None:
        barrier.wait()
        lease_sweep(store, before=datetime.now(UTC) - timedelta(days=1), batch=Batch(5))

    threads = [threading.Thread(target=take), threading.Thread(target=gc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won  # the sweep and the takeovers overlapped, and every lease won still holds
    assert {pid for pid, _ in review.held(store, reviewer="bob")} == won
    assert review.blocked(store, ids, reviewer="carl") == won
