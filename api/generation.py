"""Serving generation: one thread drives the engine, each request reads its own events.

The event loop owns the engine between steps: it hands newcomers and cancellations to the engine,
runs one step in the engine's thread, and routes the step's events to each request's queue. So
sequences join the running batch at the next step and a cancelled one leaves it at the next
step, with no lock: nothing touches the engine while a step runs. A new champion gets a new
engine; sequences already running finish on the old one, which is dropped once it drains.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from api import metrics, tasks
from api.batcher import NotServing, QueueFull
from core.runtime.engine import Engine, Event, Finish, Sampling, Sequence
from core.runtime.textgen import Generator
from core.store.canary import CHAMPION_ARM, SHADOW_ARM

log = logging.getLogger(__name__)
CANCELLED: Finish = "cancelled"
# How often a retiring scheduler checks whether its last generations have finished.
DRAIN_POLL_SECONDS = 0.05


@dataclass
class Handle:
    """One generation in flight: its events, its timings and what the log needs at the end."""

    id: str
    prompt: str
    prompt_tokens: int
    version: str
    sampling: Sampling
    meta: dict[str, Any] = field(default_factory=dict)  # how the prompt was given, for the log
    arm: str = CHAMPION_ARM  # which arm of a running canary serves it
    shadow_of: str | None = None  # a shadow's: the champion generation it mirrors
    submitted: float = field(default_factory=time.perf_counter)
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    text: list[str] = field(default_factory=list)
    completion_tokens: int = 0
    finish_reason: Finish | None = None
    first_at: float | None = None
    last_at: float | None = None
    embedding: np.ndarray | None = None

    @property
    def output(self) -> str:
        return "".join(self.text)

    @property
    def latency_ms(self) -> float:
        return ((self.last_at or time.perf_counter()) - self.submitted) * 1000.0

    async def events(self) -> AsyncIterator[Event]:
        """Events in order, ending with the one that carries the finish reason."""
        while True:
            event = await self.queue.get()
            yield event
            if event.finish_reason is not None:
                return


class Scheduler:
    """Continuous batching behind asyncio: submit, stream events, cancel, swap the model."""

    def __init__(
        self,
        generator: Generator,
        *,
        max_queue: int,
        on_finish: Callable[[Handle], None],
        set_threads: Callable[[], None] | None = None,
        arm: str = CHAMPION_ARM,
    ) -> None:
        self.generator = generator
        self.arm = arm
        # A shadow's generations answer no client: its timings stay out of the clients' latency
        # histograms (its tokens and generations are counted, by its version).
        self._timed = arm != SHADOW_ARM
        self.max_queue = max_queue
        self.on_finish = on_finish
        self._engine: Engine = generator.engine()
        self._draining: list[Engine] = []
        self._inbox: list[tuple[Engine, Sequence]] = []
        self._cancels: list[str] = []
        self._handles: dict[str, Handle] = {}
        self._engine_of: dict[str, Engine] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="generate", initializer=set_threads
        )

    @property
    def in_flight(self) -> int:
        return len(self._handles)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="generation-scheduler")

    async def stop(self) -> None:
        """Stop stepping; requests still in flight end as cancelled."""
        await tasks.cancel(self._task)
        self._task = None
        for handle in list(self._handles.values()):
            self._finish(handle, CANCELLED)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def drain(self) -> None:
        """Stop once the generations in flight have finished (a retired canary's: the caller
        sends no new ones)."""
        while self._handles:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        await self.stop()

    def swap(self, generator: Generator) -> None:
        """Serve `generator` from the next submission on; running sequences end on the old one."""
        self._draining.append(self._engine)
        self.generator, self._engine = generator, generator.engine()

    def admit(self, n: int = 1) -> None:
        """QueueFull when `n` more generations would not fit beside those in flight."""
        if len(self._handles) + n > self.max_queue:
            raise QueueFull(f"{len(self._handles)} generations in flight")

    def submit(
        self,
        prompt: str,
        prompt_ids: list[int],
        sampling: Sampling,
        meta: dict[str, Any] | None = None,
        shadow_of: str | None = None,
    ) -> Handle:
        """Queue one generation; QueueFull when `max_queue` are in flight already."""
        if self._task is None:
            raise NotServing("the generation scheduler is not running")
        self.admit()
        handle = Handle(
            id=str(uuid.uuid4()),
            prompt=prompt,
            prompt_tokens=len(prompt_ids),
            version=self.generator.version,
            sampling=sampling,
            meta=meta or {},
            arm=self.arm,
            shadow_of=shadow_of,
        )
        self._handles[handle.id] = handle
        self._engine_of[handle.id] = self._engine
        self._inbox.append((self._engine, Sequence(handle.id, prompt_ids, sampling)))
        self._wake.set()
        return handle

    def cancel(self, handle: Handle) -> None:
        """Drop a generation whose client went away; it is logged as cancelled."""
        if handle.id in self._handles and handle.finish_reason is None:
            self._cancels.append(handle.id)
            self._finish(handle, CANCELLED)
            self._wake.set()

    def _has_work(self) -> bool:
        engines = [self._engine, *self._draining]
        return bool(self._inbox or self._cancels or any(e.has_work for e in engines))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._has_work():
                self._wake.clear()
                await self._wake.wait()
                continue
            self._hand_over()
            try:
                events = await loop.run_in_executor(self._pool, self._step)
            except Exception:  # a failed step ends its sequences; serving goes on
                log.exception("generation step failed; ending the running sequences")
                self._fail_all()
                continue
            now = time.perf_counter()
            for event in events:
                self._deliver(event, now)

    def _hand_over(self) -> None:
        for engine, seq in self._inbox:
            engine.add(seq)
        self._inbox.clear()
        for seq_id in self._cancels:
            if seq_id in self._engine_of:
                self._engine_of.pop(seq_id).cancel(seq_id)
        self._cancels.clear()
        self._draining = [e for e in self._draining if e.has_work]

    def _step(self) -> list[Event]:
        """One step of every engine with work (the draining ones finish their sequences)."""
        events: list[Event] = []
        for engine in [self._engine, *self._draining]:
            if engine.has_work:
                events += engine.step()
        if self._timed:
            metrics.RUNNING_SEQUENCES.set(len(self._handles))
        return events

    def _deliver(self, event: Event, now: float) -> None:
        handle = self._handles.get(event.seq_id)
        if handle is None:  # cancelled while the step ran
            return
        new_tokens = event.completion_tokens - handle.completion_tokens
        if handle.first_at is None:
            handle.first_at = now
            if self._timed:
                metrics.FIRST_TOKEN_SECONDS.observe(now - handle.submitted)
        elif new_tokens > 0 and handle.last_at is not None and self._timed:
            metrics.INTER_TOKEN_SECONDS.observe((now - handle.last_at) / new_tokens)
        handle.last_at = now
        handle.completion_tokens = event.completion_tokens
        if event.embedding is not None:
            handle.embedding = event.embedding
        handle.text.append(event.delta)
        metrics.GENERATED_TOKENS.labels(model_version=handle.version).inc(max(new_tokens, 0))
        handle.queue.put_nowait(event)
        if event.finish_reason is not None:
            self._finish(handle, event.finish_reason)

    def _finish(self, handle: Handle, reason: Finish) -> None:
        self._handles.pop(handle.id, None)
        if reason == CANCELLED:
            handle.queue.put_nowait(Event(handle.id, "", CANCELLED, handle.completion_tokens))
        else:
            self._engine_of.pop(handle.id, None)
        handle.finish_reason = reason
        handle.last_at = handle.last_at or time.perf_counter()
        metrics.GENERATIONS.labels(model_version=handle.version, finish_reason=reason).inc()
        if self._timed:
            metrics.OUTPUT_TOKENS.observe(handle.completion_tokens)
        try:
            self.on_finish(handle)
        except Exception:  # logging must never break serving
            log.exception("could not log generation %s", handle.id)

    def _fail_all(self) -> None:
        for handle in list(self._handles.values()):
            self._cancels.append(handle.id)
            self._finish(handle, CANCELLED)
