"""Giving SQLite's free pages back to the disk in short steps, while serving keeps writing."""

from __future__ import annotations

import time
from typing import Any

from core.store.db import Database
from core.store.pacing import CHUNK, Clock, rest

SQLITE_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


def incremental_vacuum(db: Database, *, pages: int, seconds: float = 0.0) -> int | None:
    """Give SQLite's free pages back to the disk, at most `pages` per transaction, as many as
    fit in `seconds` (0: `pages`); the steps taken, or None where it cannot (not SQLite, or a
    store made before incremental auto-vacuum)."""
    if db.engine.dialect.name != "sqlite":
        return None
    with db.engine.connect() as conn:
        if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != SQLITE_INCREMENTAL:
            return None
    raw = db.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        steps, free = 0, _free_pages(driver)
        while free:
            began = time.perf_counter()
            _vacuum_step(driver, min(pages, free), seconds)
            steps, left = steps + 1, _free_pages(driver)
            if left >= free:  # nothing freed (another writer deleting as fast): stop here
                break
            free = left
            passive = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall
            rest(time.perf_counter() - began, tidy=passive)
        # The file shrinks when the moved pages are checkpointed out of the WAL.
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
    return steps


def _vacuum_step(driver: Any, pages: int, seconds: float) -> None:
    """One transaction freeing up to `pages` pages, until it has held the lock `seconds`."""
    driver.execute("BEGIN IMMEDIATE")
    try:
        clock = Clock(seconds)
        clock.done()  # the lock is held from BEGIN IMMEDIATE on
        for done in range(1, pages + 1):
            # execute() steps the pragma once, and each step frees one page.
            driver.execute("PRAGMA incremental_vacuum")
            if done % CHUNK == 0 and clock.done():
                break
        driver.execute("COMMIT")
    except BaseException:
        driver.execute("ROLLBACK")
        raise


def _free_pages(driver: Any) -> int:
    return int(driver.execute("PRAGMA freelist_count").fetchone()[0])
