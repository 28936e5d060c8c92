"""A shadow on one replica: the challenger runs on mirrored requests after the champion has
answered, in the background, and its answers go to the prediction log only: a classifier's texts
through its batcher, a generator's finished generations again through its own scheduler (the same
prompt and sampling, re-tokenized by the shadow's tokenizer).

Nothing here is on the response path: a request is mirrored only if the shadow's small queue has
room and the prediction log is less than half full (else it is skipped and counted), so a shadow
never delays or changes the champion's answer, nor crowds out its log records, and is the first
work dropped under load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from api import metrics
from api.batcher import Batcher, NotServing, QueueFull
from api.canary import Challenger
from api.generation import CANCELLED, Handle, Scheduler
from api.logrows import generation_record, prediction_record
from api.predlog import PredictionLog
from core.runtime.generator import record_ids
from core.store.canary import SHADOW_ARM

log = logging.getLogger(__name__)
# Rule: the shadow's records never take the last half of the prediction log's buffer, so that
# while the store is slow the champion's records are not the ones dropped.
KEEP_FOR_CHAMPION = 0.5


class Mirror:
    """Sends mirrored requests to the shadow's batcher or scheduler and logs what it answers."""

    def __init__(self, predlog: PredictionLog, *, log_text: bool) -> None:
        self.predlog = predlog
        self.log_text = log_text
        self._running: set[asyncio.Task[None]] = set()
        self._run = metrics.SHADOW_TEXTS.labels(outcome="run")
        self._skipped = metrics.SHADOW_TEXTS.labels(outcome="skipped")

    @property
    def in_flight(self) -> int:
        """Mirrored requests the shadow has not answered (or been refused) yet."""
        return len(self._running)

    def send(self, shadow: Challenger, texts: list[str], champion_ids: list[str]) -> None:
        """Mirror `texts` (the champion answered them as `champion_ids`) to a classifier, unless
        its queue is full or the prediction log is half full."""
        batcher = shadow.batcher
        assert batcher is not None  # a classifier's shadow beside a classifier (core.shadow)
        if self._room(len(texts), batcher.admit):
            self._spawn(self._mirror(shadow, batcher, texts, champion_ids))

    def send_generation(self, shadow: Challenger, champion: Handle) -> None:
        """Generate again with the shadow what the champion has finished generating, unless its
        scheduler has no room or the prediction log is half full."""
        scheduler = shadow.scheduler
        assert scheduler is not None  # a generator's shadow beside a generator (core.shadow)
        # Those still tokenizing count as in flight: a batch finishing at once is not let through
        # all, only to be refused one by one at the scheduler.
        if self._room(1, lambda n: scheduler.admit(n + self.in_flight)):
            self._spawn(self._generate(scheduler, champion))

    def finished(self, handle: Handle) -> None:
        """The shadow scheduler's end of a generation: logged, or skipped when cut short."""
        if handle.finish_reason == CANCELLED:  # its step failed, or the shadow retired
            self._skipped.inc()
            return
        self.predlog.add(generation_record(handle, log_text=self.log_text, keep_embedding=False))
        self._run.inc()

    def _room(self, n: int, admit: Callable[[int], None]) -> bool:
        """Whether the shadow and the log take `n` more; else they are counted skipped."""
        try:
            admit(n)
        except QueueFull:
            self._skipped.inc(n)
            return False
        if not self.predlog.has_room(n, keep=KEEP_FOR_CHAMPION):
            self._skipped.inc(n)
            return False
        return True

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="shadow")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _generate(self, scheduler: Scheduler, champion: Handle) -> None:
        """Tokenize the champion's prompt with the shadow's tokenizer (off the event loop) and
        submit it; the scheduler hands the finished generation to `finished`."""
        generator = scheduler.generator
        served = {**champion.meta, "prompt": champion.prompt}  # the text or turns, as logged
        with self._failing(1, generator.version):
            ids = await asyncio.to_thread(record_ids, generator.tokenizer, served)
            if not ids or len(ids) > generator.context - champion.sampling.max_new_tokens:
                self._skipped.inc()  # its context is shorter than the champion's
                return
            scheduler.submit(
                champion.prompt, ids, champion.sampling, champion.meta, shadow_of=champion.id
            )

    async def _mirror(
        self, shadow: Challenger, batcher: Batcher, texts: list[str], champion_ids: list[str]
    ) -> None:
        started = time.perf_counter()
        with self._failing(len(texts), shadow.canary.version):
            results = await batcher.submit(texts)
            latency_ms = (time.perf_counter() - started) * 1000.0
            for text, (output, version), champion_id in zip(
                texts, results, champion_ids, strict=True
            ):
                record = prediction_record(
                    text=text,
                    output=output,
                    version=version,
                    task="classification",
                    latency_ms=latency_ms,
                    log_text=self.log_text,
                    keep_embedding=False,  # the monitor reads the champion's, never a shadow's
                    arm=SHADOW_ARM,
                    shadow_of=champion_id,
                )
                self.predlog.add(record)
            self._run.inc(len(texts))

    @contextmanager
    def _failing(self, n: int, version: str) -> Iterator[None]:
        """Count `n` skipped when the work inside fails: a failing shadow never disturbs
        serving."""
        try:
            yield
        except (QueueFull, NotServing):  # filled up meanwhile, or the shadow is retiring
            self._skipped.inc(n)
        except Exception:
            log.exception("the shadow %s failed on mirrored work", version)
            self._skipped.inc(n)

    async def stop(self) -> None:
        """Wait for the mirrored texts in flight (their batcher still runs; a generation still
        running ends when its scheduler stops)."""
        if self._running:
            await asyncio.wait(set(self._running))
