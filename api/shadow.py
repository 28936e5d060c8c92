"""A shadow on one replica: the challenger runs on mirrored requests after the champion has
answered, in the background, and its answers go to the prediction log only.

Nothing here is on the response path: a text is mirrored only if the shadow's small queue has
room and the prediction log is less than half full (else it is skipped and counted), so a shadow
never delays or changes the champion's answer, nor crowds out its log records, and is the first
work dropped under load.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api import metrics
from api.batcher import Batcher, NotServing, QueueFull
from api.canary import Challenger
from api.logrows import prediction_record
from api.predlog import PredictionLog
from core.store.canary import SHADOW_ARM

log = logging.getLogger(__name__)
# Rule: the shadow's records never take the last half of the prediction log's buffer, so that
# while the store is slow the champion's records are not the ones dropped.
KEEP_FOR_CHAMPION = 0.5


class Mirror:
    """Sends mirrored texts to the shadow's batcher and logs what it answers."""

    def __init__(self, predlog: PredictionLog, *, log_text: bool) -> None:
        self.predlog = predlog
        self.log_text = log_text
        self._running: set[asyncio.Task[None]] = set()
        self._run = metrics.SHADOW_TEXTS.labels(outcome="run")
        self._skipped = metrics.SHADOW_TEXTS.labels(outcome="skipped")

    def send(self, shadow: Challenger, texts: list[str], champion_ids: list[str]) -> None:
        """Mirror `texts` (the champion answered them as `champion_ids`), unless the shadow's
        queue is full or the prediction log is half full."""
        batcher = shadow.batcher
        assert batcher is not None  # shadows run classifiers only (core.shadow)
        try:
            batcher.admit(len(texts))
        except QueueFull:
            self._skipped.inc(len(texts))
            return
        if not self.predlog.has_room(len(texts), keep=KEEP_FOR_CHAMPION):
            self._skipped.inc(len(texts))
            return
        task = asyncio.create_task(
            self._mirror(shadow, batcher, texts, champion_ids), name="shadow"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _mirror(
        self, shadow: Challenger, batcher: Batcher, texts: list[str], champion_ids: list[str]
    ) -> None:
        started = time.perf_counter()
        try:
            results = await batcher.submit(texts)
        except (QueueFull, NotServing):  # filled up meanwhile, or the shadow is retiring
            self._skipped.inc(len(texts))
            return
        except Exception:  # a failing shadow must not disturb serving
            log.exception("the shadow %s failed on mirrored texts", shadow.canary.version)
            self._skipped.inc(len(texts))
            return
        latency_ms = (time.perf_counter() - started) * 1000.0
        for text, (output, version), champion_id in zip(texts, results, champion_ids, strict=True):
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

    async def stop(self) -> None:
        """Wait for the mirrored texts in flight (their batcher still runs)."""
        if self._running:
            await asyncio.wait(set(self._running))
