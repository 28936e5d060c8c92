"""The prediction log: a bounded buffer that a background writer bulk-inserts into the store.

Serving never waits for the store. If the store fails, the batch is dropped and counted; if the
buffer is full, new records are dropped and counted. Feedback for an id still buffered calls
`flush_if_pending` first, so an id this replica just issued is never answered 404; an id that
another replica (or worker process) issued is looked up once more after its flush
(`after_other_flush`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool

from api import metrics, tasks
from core.store.predictions import PredictionNotFound

log = logging.getLogger(__name__)

Writer = Callable[[list[dict[str, Any]]], None]
T = TypeVar("T")


async def after_other_flush(
    call: Callable[[], T], prediction_id: str, *, flush_seconds: float
) -> T:
    """`call()` in a thread; on PredictionNotFound, once more after two flush intervals when
    another replica may still buffer the id.

    Rule: a replica writes its buffer within one flush interval; the second gives its write as
    long again. Only a UUID can be buffered (every id this api issues is one), so any other
    unknown id is answered at once.
    """
    try:
        return await run_in_threadpool(call)
    except PredictionNotFound:
        if not issued_form(prediction_id):
            raise
    await asyncio.sleep(2 * flush_seconds)
    return await run_in_threadpool(call)


def issued_form(prediction_id: str) -> bool:
    """Whether an id could be one this api issued (a UUID as text), so it may still be buffered."""
    try:
        return str(uuid.UUID(prediction_id)) == prediction_id
    except ValueError:
        return False


class PredictionLog:
    """Buffer records in memory; write them at least every `flush_seconds`."""

    def __init__(self, write: Writer, *, max_buffer: int, flush_seconds: float) -> None:
        self._write = write
        self.max_buffer = max_buffer
        self.flush_seconds = flush_seconds
        self._buffer: dict[str, dict[str, Any]] = {}
        self._in_flight: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predlog")

    def add(self, record: dict[str, Any]) -> bool:
        """Buffer one record; False (and counted) when the buffer is full."""
        if len(self._buffer) >= self.max_buffer:
            metrics.LOG_DROPPED.inc()
            return False
        self._buffer[record["id"]] = record
        return True

    def has_room(self, n: int, *, keep: float = 0.0) -> bool:
        """Whether `n` more records fit with `keep` of the buffer still free afterwards."""
        return len(self._buffer) + n <= self.max_buffer * (1.0 - keep)

    def pending(self, prediction_id: str) -> bool:
        """Whether the record is buffered or being written right now."""
        return prediction_id in self._buffer or prediction_id in self._in_flight

    async def flush_if_pending(self, prediction_id: str) -> None:
        """Write the buffer now if it holds this id (and wait for a write in progress)."""
        if self.pending(prediction_id):
            await self.flush()

    async def flush(self) -> int:
        """Write everything buffered; returns the number of records written."""
        async with self._lock:
            if not self._buffer:
                return 0
            self._in_flight, self._buffer = self._buffer, {}
            records = list(self._in_flight.values())
            try:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._pool, self._write, records)
            except Exception:
                log.exception("prediction log write failed; %d records dropped", len(records))
                metrics.LOG_DROPPED.inc(len(records))
                return 0
            finally:
                self._in_flight = {}
            metrics.LOG_WRITTEN.inc(len(records))
            return len(records)

    async def start(self) -> None:
        """Start the background writer."""
        self._task = asyncio.create_task(self._run(), name="predlog")

    async def stop(self) -> None:
        """Stop the writer and write what is left."""
        await tasks.cancel(self._task)
        await self.flush()
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
