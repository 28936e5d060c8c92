"""The prediction log: bulk writes, bounded buffer, store failures counted, flush on demand."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from api import metrics
from api.predlog import PredictionLog, after_other_flush
from core.store.predictions import PredictionNotFound


def record(i: int) -> dict[str, Any]:
    return {"id": f"p{i}"}


async def test_background_writer_bulk_inserts_within_the_flush_interval() -> None:
    written: list[list[dict[str, Any]]] = []
    log = PredictionLog(written.append, max_buffer=100, flush_seconds=0.05)
    await log.start()
    for i in range(5):
        log.add(record(i))
    await asyncio.sleep(0.2)
    assert [r["id"] for batch in written for r in batch] == [f"p{i}" for i in range(5)]
    assert len(written) == 1  # one bulk insert, not five
    await log.stop()


async def test_full_buffer_drops_new_records_and_counts_them() -> None:
    log = PredictionLog(lambda rows: None, max_buffer=2, flush_seconds=10)
    before = metrics.LOG_DROPPED._value.get()
    assert log.add(record(1)) and log.add(record(2))
    assert not log.add(record(3))
    assert metrics.LOG_DROPPED._value.get() == before + 1


async def test_store_failure_drops_the_batch_counts_it_and_serving_goes_on() -> None:
    def broken(rows: list[dict[str, Any]]) -> None:
        raise ConnectionError("store down")

    log = PredictionLog(broken, max_buffer=10, flush_seconds=10)
    before = metrics.LOG_DROPPED._value.get()
    log.add(record(1))
    log.add(record(2))
    assert await log.flush() == 0
    assert metrics.LOG_DROPPED._value.get() == before + 2
    assert log.add(record(3))  # still accepting


async def test_flush_if_pending_writes_a_buffered_id_before_returning() -> None:
    written: list[str] = []
    log = PredictionLog(
        lambda rows: written.extend(r["id"] for r in rows), max_buffer=10, flush_seconds=10
    )
    log.add(record(7))
    assert log.pending("p7")
    await log.flush_if_pending("p7")
    assert written == ["p7"] and not log.pending("p7")
    await log.flush_if_pending("unknown")  # nothing buffered: no write
    assert written == ["p7"]


async def test_an_id_another_replica_buffers_is_found_after_its_flush_others_at_once() -> None:
    issued = str(uuid.uuid4())
    stored: set[str] = set()
    looked: list[float] = []

    def lookup() -> str:
        looked.append(time.monotonic())
        if issued not in stored:
            raise PredictionNotFound(issued)
        return "found"

    async def other_replica_flushes() -> None:
        await asyncio.sleep(0.05)
        stored.add(issued)

    flushing = asyncio.create_task(other_replica_flushes())
    assert await after_other_flush(lookup, issued, flush_seconds=0.05) == "found"
    await flushing
    assert len(looked) == 2 and looked[1] - looked[0] >= 0.09  # two flush intervals apart
    stored.clear()
    looked.clear()
    with pytest.raises(PredictionNotFound):  # not an id the api issues: no wait, one look
        await after_other_flush(lookup, "no-such-id", flush_seconds=10)
    assert len(looked) == 1
