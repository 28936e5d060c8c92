"""Dynamic batching: one consumer per device forms batches from an asyncio queue.

The consumer dispatches at once when the device is idle; while a batch runs, new requests
accumulate, and the next batch takes what is there (up to `max_batch_size`). The forward pass runs
in a dedicated thread, so the event loop never blocks. Token budgets are the predictor's business:
it sorts by length and splits a batch into padded chunks under `max_batch_tokens`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from api import metrics
from core.runtime.predictor import Output, Predictor

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More texts are waiting than `max_queue` allows."""


class NotServing(Exception):
    """The batcher is not running (starting up or shutting down)."""


@dataclass
class _Item:
    text: str
    future: asyncio.Future[tuple[Output, str]]


class Batcher:
    """Queue texts, run them through the predictor in batches, answer each future."""

    def __init__(self, predictor: Predictor, *, max_batch_size: int, max_queue: int) -> None:
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._next: Predictor | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")

    @property
    def depth(self) -> int:
        """Texts waiting."""
        return self._queue.qsize()

    async def start(self) -> None:
        """Start the consumer task."""
        self._task = asyncio.create_task(self._consume(), name="batcher")

    async def stop(self) -> None:
        """Stop consuming; waiting requests get NotServing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(NotServing("shutting down"))
        self._pool.shutdown(wait=True)

    def swap(self, predictor: Predictor) -> None:
        """Serve `predictor` from the next batch on; the batch in flight finishes on the old one."""
        self._next = predictor

    async def submit(self, texts: list[str]) -> list[tuple[Output, str]]:
        """Predict texts; returns, in order, each output with the version that produced it."""
        if self._task is None:
            raise NotServing("not started")
        if self._queue.qsize() + len(texts) > self.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        items = [_Item(t, loop.create_future()) for t in texts]
        for item in items:
            self._queue.put_nowait(item)
        metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return list(await asyncio.gather(*(i.future for i in items)))

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            if self._next is not None:
                self.predictor, self._next = self._next, None
            predictor = self.predictor
            started = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(
                    self._pool, predictor.predict, [i.text for i in batch]
                )
            except Exception as exc:  # a bad batch must not kill the consumer
                log.exception("forward pass failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            metrics.INFERENCE_SECONDS.observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.observe(len(batch))
            for item, output in zip(batch, outputs, strict=True):
                if not item.future.done():  # the client may have gone
                    item.future.set_result((output, predictor.version))
