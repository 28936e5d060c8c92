"""Pacing gc's writes so that serving's prediction-log writer never waits long for the lock.

SQLite has one writer at a time, and a writer that finds the lock taken retries after sleeps of
1, 2, 5, 10, 15, 20, 25 ... 100 ms: it waits about as long as a transaction holds the lock, plus
the sleep it is in. So a gc transaction writes in chunks and stops taking more once it has held
the lock `seconds` (however slow the machine is today, where a row count would hold it for
however long those rows take), and the lock is then left free about as long as it was held.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.store.db import Database

CHUNK = 50  # rows (or pages) per statement inside a paced transaction


class Clock:
    """Whether a transaction has held the lock `seconds` (0: never done): counted from its
    first chunk's end, when the lock is surely held, so waiting for it is not counted."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None

    def done(self) -> bool:
        """Call after each chunk: True once the transaction should commit."""
        now = time.perf_counter()
        if self.since is None:
            self.since = now
        return bool(self.seconds) and now - self.since >= self.seconds


def rest(took: float, *, ratio: float = 1.0, tidy: Callable[[], object] = lambda: None) -> None:
    """Leave the lock free `ratio` times the `took` seconds a transaction held it, doing `tidy`
    (a checkpoint) meanwhile.

    A next transaction right away would take the lock again before a waiting writer wakes,
    transaction after transaction (p99 of serving's inserts went from 31 ms to 810 ms)."""
    freed = time.perf_counter()
    tidy()
    time.sleep(max(0.0, took * ratio - (time.perf_counter() - freed)))


def checkpoint(db: Database) -> None:
    """SQLite: copy what gc wrote out of the WAL now, passively (waiting for no one); else the
    commit of a serving insert that finds the WAL past 1,000 pages does it, and waits."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
