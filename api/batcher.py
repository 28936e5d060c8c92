"""Dynamic batching: one consumer per device forms batches from an asyncio queue.

Forward passes run in dedicated threads, so the event loop never blocks. A device has one or more
forward lanes: one on a GPU; on a CPU a few single-threaded lanes, because independent forwards
keep every core busy where one forward split across cores waits at each operator for the slowest,
and one lane tokenizes while another computes.

When the whole device is idle the consumer dispatches at once; a lone batch (nothing else waiting)
then gets every lane's threads, so a single request is as fast as the cores allow. While other
lanes compute, a free lane takes what accumulated meanwhile, letting requests that are still
arriving join for a few milliseconds, and what is waiting is split evenly over the free lanes.
A batch holds up to `max_batch_size` texts, and up to LANE_BATCH when the device has several
lanes: a single-threaded forward gains little from bigger batches, and small ones let a request
that just missed a batch wait a short one, not a long one (the latency tail under load). Token
budgets are the predictor's business: it sorts by length and splits a batch into padded chunks
under `max_batch_tokens`.

Admission is by time as well as by count: from the texts per second the device has been serving,
a request whose texts would wait longer than `deadline_seconds` is refused at once (503), so under
overload the queue holds about a deadline of work, admitted requests finish within it, and the
rest are told to come back instead of timing out in line. Texts whose client has gone (its future
cancelled) are dropped before their forward pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from api import metrics, tasks
from core.runtime.predictor import Output, Predictor

log = logging.getLogger(__name__)
SETTLE_SECONDS = 0.004  # longest wait for company while other lanes compute
LANE_BATCH = 16  # most texts in one batch when the device has several lanes
RATE_SMOOTHING = 0.2  # weight of the newest batch in the served-rate estimate (about 5 batches)
DRAIN_POLL_SECONDS = 0.005  # how often a draining batcher checks that its queue has emptied


class QueueFull(Exception):
    """More texts are waiting than `max_queue` allows, or they would wait past the deadline;
    `wait` is the expected wait in seconds when that is why."""

    def __init__(self, message: str = "queue full", *, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait

    def retry_after(self, at_least: int, deadline: float) -> int:
        """Seconds a client should wait: until the wait past the deadline has drained, at least
        `at_least`."""
        return max(at_least, math.ceil(self.wait - deadline))


class NotServing(Exception):
    """The batcher is not running (starting up or shutting down)."""


@dataclass
class _Item:
    text: str
    future: asyncio.Future[tuple[Output, str]]
    first: bool = True  # the first text of its request (a swap waits for one: see `_dispatch`)


class Batcher:
    """Queue texts, run them through the predictor in batches, answer each future."""

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_batch_size: int,
        max_queue: int,
        lanes: int = 1,
        threads_per_lane: int = 1,
        set_threads: Callable[[int], None] | None = None,
        lane_init: Callable[[], None] | None = None,
        deadline_seconds: float = 0.0,
        arm: str = "champion",
    ) -> None:
        self.predictor = predictor
        # One series per arm: a canary's batcher runs beside the champion's in one process.
        self._depth = metrics.QUEUE_DEPTH.labels(arm=arm)
        self.deadline = deadline_seconds  # 0: admission by count only
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.lanes = lanes
        self.threads_per_lane = threads_per_lane
        self._set_threads = set_threads
        self._cap = max_batch_size if lanes == 1 else min(max_batch_size, LANE_BATCH)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._next: Predictor | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = 0  # lanes in use
        self._freed = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._local = threading.local()
        # `lane_init` runs first in each lane thread (its CPU priority, before torch starts any
        # intra-op threads from it)
        self._pool = ThreadPoolExecutor(
            max_workers=lanes, thread_name_prefix="forward", initializer=lane_init
        )
        self._rate = 0.0  # texts/s the device serves, from recent batches (0: none measured)

    @property
    def depth(self) -> int:
        """Texts waiting."""
        return self._queue.qsize()

    @property
    def idle(self) -> bool:
        """Nothing waiting and no forward pass running."""
        return self._queue.empty() and not self._busy

    def expected_wait(self, n: int = 1) -> float:
        """Seconds `n` more texts would wait for the ones ahead of them and their own forward
        pass, at the measured rate (0 before any batch has run)."""
        return (self._queue.qsize() + n) / self._rate if self._rate else 0.0

    def admit(self, n: int = 1) -> None:
        """QueueFull unless `n` more texts fit the queue and its deadline."""
        waiting = self._queue.qsize()
        if waiting + n > self.max_queue:
            raise QueueFull("queue full")
        # An idle device refuses nothing by time: no work is ahead to shed, and the batch it
        # admits re-measures a rate that one slow batch (a warm-up, a paused machine) set low,
        # which would otherwise refuse every request from then on, none left to measure it.
        if self.deadline and not self.idle and (wait := self.expected_wait(n)) > self.deadline:
            raise QueueFull(
                f"overloaded: {wait:.2f} s expected wait, deadline {self.deadline:g} s", wait=wait
            )

    async def start(self) -> None:
        """Start the consumer task."""
        self._task = asyncio.create_task(self._consume(), name="batcher")

    async def stop(self) -> None:
        """Stop consuming; batches in flight finish, waiting requests get NotServing."""
        await tasks.cancel(self._task)
        self._task = None
        if self._running:
            await asyncio.wait(self._running)
        while not self._queue.empty():
            _fail([self._queue.get_nowait()], NotServing("shutting down"))
        self._depth.set(0)
        self._pool.shutdown(wait=True)

    async def drain(self) -> None:
        """Stop once every text already queued has its answer (a retired canary drops none)."""
        while self._task is not None and (self._queue.qsize() or self._running):
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        await self.stop()

    def swap(self, predictor: Predictor) -> None:
        """Serve `predictor` from the next batch that starts a request on; batches in flight
        finish on the old one."""
        self._next = predictor

    async def submit(self, texts: list[str]) -> list[tuple[Output, str]]:
        """Predict texts; returns, in order, each output with the version that produced it."""
        if self._task is None:
            raise NotServing("not started")
        self.admit(len(texts))
        loop = asyncio.get_running_loop()
        items = [_Item(t, loop.create_future(), first=i == 0) for i, t in enumerate(texts)]
        for item in items:
            self._queue.put_nowait(item)
        self._depth.set(self._queue.qsize())
        if len(items) == 1:  # the common case, without gather's bookkeeping
            return [await items[0].future]
        return list(await asyncio.gather(*(i.future for i in items)))

    async def _consume(self) -> None:
        while True:
            while self._busy >= self.lanes:
                self._freed.clear()
                await self._freed.wait()
            batch = [await self._queue.get()]
            if batch[0].future.done():  # its client has gone: nothing to compute
                continue
            try:
                if self._busy:  # the device is busy: let requests still arriving join
                    await self._settle()
            except asyncio.CancelledError:
                _fail(batch, NotServing("shutting down"))
                raise
            self._dispatch(batch)

    async def _settle(self) -> None:
        """Wait while the queue keeps growing, a few milliseconds at most."""
        deadline = time.perf_counter() + SETTLE_SECONDS
        seen = -1
        while seen != (n := self._queue.qsize()) and n < self._cap:
            if time.perf_counter() >= deadline:
                return
            seen = n
            await asyncio.sleep(0.001)

    def _dispatch(self, batch: list[_Item]) -> None:
        """Take this lane's share of what waits and start its forward pass."""
        free = self.lanes - self._busy
        share = min(self._cap, -(-(self._queue.qsize() + 1) // free))
        while len(batch) < share and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                batch.append(item)
        self._depth.set(self._queue.qsize())
        width = self.lanes if self._busy == 0 and self._queue.empty() else 1
        self._busy += width
        # A swap starts with a batch that starts a request: the rest of a request split over two
        # batches stays on the version that began it, so one answer names one version.
        if self._next is not None and batch[0].first:
            self.predictor, self._next = self._next, None
        task = asyncio.create_task(self._run(self.predictor, batch, width))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, predictor: Predictor, batch: list[_Item], width: int) -> None:
        """One batch on `width` lanes; answers its futures and frees the lanes."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        threads = width * self.threads_per_lane
        try:
            texts = [i.text for i in batch]
            outputs = await loop.run_in_executor(
                self._pool, self._forward, predictor, texts, threads
            )
        except Exception as exc:  # a bad batch must not kill the consumer
            log.exception("forward pass failed")
            _fail(batch, exc)
            return
        finally:
            self._busy -= width
            self._freed.set()
        elapsed = time.perf_counter() - started
        self._measured(len(batch) / max(elapsed, 1e-6) * self.lanes / width)
        metrics.INFERENCE_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(len(batch))
        version = predictor.version
        for item, output in zip(batch, outputs, strict=True):
            if not item.future.done():  # the client may have gone
                item.future.set_result((output, version))

    def _measured(self, rate: float) -> None:
        """Fold one batch's rate, scaled to the whole device, into the estimate."""
        self._rate = rate if not self._rate else self._rate + RATE_SMOOTHING * (rate - self._rate)

    def _forward(self, predictor: Predictor, texts: list[str], threads: int) -> list[Output]:
        """In a lane thread: set its torch thread count when it changes, then predict."""
        if self._set_threads is not None and getattr(self._local, "threads", 0) != threads:
            self._set_threads(threads)
            self._local.threads = threads
        return predictor.predict(texts)


def _fail(items: list[_Item], exc: BaseException) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(exc)
