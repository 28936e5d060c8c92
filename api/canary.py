"""The canary (or shadow) on one replica: the challenger loaded beside the champion with a
batcher (a classifier) or a generation scheduler of its own, and the sticky split of clients
between them (a shadow's share of mirrored requests: api.shadow).

The replica follows the store's running canary on its champion poll, so every replica serves the
same split; with no canary nothing here runs per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from api.batcher import Batcher
from api.generation import Scheduler
from core.canary import in_canary, review, stop_if_moved
from core.promotion import Loader
from core.registry import Registry
from core.runtime.predictor import Predictor
from core.runtime.textgen import Generator
from core.settings import CanarySettings
from core.store.canary import (
    CANARY_ARM,
    CANARY_MODE,
    SHADOW_ARM,
    SHADOW_MODE,
    CanaryRow,
    running_canary,
)
from core.store.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenger:
    """The running canary's model on this replica."""

    canary: CanaryRow
    predictor: Predictor | Generator
    batcher: Batcher | None = None  # a classifier's
    scheduler: Scheduler | None = None  # a generator's

    @property
    def runner(self) -> Batcher | Scheduler:
        """What serves its requests (the batcher or the scheduler)."""
        runner = self.batcher or self.scheduler
        assert runner is not None  # a challenger is built with one
        return runner

    def serves(self, client: str | None) -> bool:
        """Whether this client's requests go to the challenger (never for a shadow, nor for an
        unknown client)."""
        if self.canary.mode != CANARY_MODE or client is None:
            return False
        return in_canary(client, share=self.canary.share, salt=self.canary.id)

    def mirrors(self, draw: float) -> bool:
        """Whether a request whose uniform `draw` in [0, 1) is given goes to the shadow too."""
        return self.canary.mode == SHADOW_MODE and draw < self.canary.share


class CanarySlot:
    """Holds the challenger while a canary runs for the champion this replica serves."""

    def __init__(
        self,
        *,
        registry: Registry,
        load: Loader,
        batcher: Callable[[Predictor, str], Batcher],
        scheduler: Callable[[Generator, str], Scheduler],
        settings: CanarySettings,
    ) -> None:
        self.registry = registry
        self.load = load
        self.make_batcher = batcher
        self.make_scheduler = scheduler
        self.settings = settings
        self.challenger: Challenger | None = None
        self._broken: str | None = None  # the canary whose challenger did not load here
        self._looking: asyncio.Task[None] | None = None
        self._again = False  # feedback came since the running look started

    def predictor_of(self, version: str) -> Predictor | Generator | None:
        """The challenger's loaded model when it is `version` (a promoted canary is not
        loaded twice)."""
        current = self.challenger
        return current.predictor if current and current.canary.version == version else None

    async def sync(self, champion: str | None) -> None:
        """Follow the store: load a new canary's challenger, retire one that ended, and look
        at a canary that may have run out of time."""
        running = await asyncio.to_thread(running_canary, self.registry.db)
        if running is not None and running.champion_version != champion:
            # This replica does not serve that canary's champion (yet), or it is no longer the
            # champion: then the canary ends here, whether or not feedback comes to look at it.
            await asyncio.to_thread(stop_if_moved, self.registry)
            running = None
        current = self.challenger
        if current is not None and (running is None or running.id != current.canary.id):
            self.challenger = None  # new requests go to the champion from here on
            await current.runner.drain()
            log.info("canary %s of %s ended here", current.canary.id, current.canary.version)
        if running is None:
            return
        if self.challenger is None and running.id != self._broken:
            await self._load(running)
        hours = (utcnow() - running.started_at).total_seconds() / 3600
        if hours >= self.settings.max_hours:
            await asyncio.to_thread(review, self.registry, self.settings)

    def look_soon(self) -> None:
        """After feedback was committed: have the running canary's test look, in the background
        (nothing to do while this replica serves none).

        A look reads every item from the store (about 0.25 s over 50,000 in SQLite), so the
        feedback's answer does not wait for it; one look at a time per replica, and feedback
        arriving meanwhile gets one more look after it. Fewer looks leave the test valid.
        """
        if self.challenger is None or self.challenger.canary.mode != CANARY_MODE:
            return
        self._again = True
        if self._looking is None or self._looking.done():
            self._looking = asyncio.create_task(self._looks(), name="canary-look")

    async def _looks(self) -> None:
        while self._again:
            self._again = False
            try:
                await asyncio.to_thread(review, self.registry, self.settings)
            except Exception:  # nothing is lost: the next look reads every item again
                log.exception("the canary's look failed; the next feedback item looks again")

    async def _load(self, running: CanaryRow) -> None:
        try:
            info = await asyncio.to_thread(self.registry.get, running.version)
            predictor = await asyncio.to_thread(self.load, info)
        except Exception:  # a challenger that does not load leaves the champion serving all
            self._broken = running.id
            log.exception(
                "canary challenger %s does not load; champion serves all", running.version
            )
            return
        arm = SHADOW_ARM if running.mode == SHADOW_MODE else CANARY_ARM
        if isinstance(predictor, Generator):
            challenger = Challenger(
                running, predictor, scheduler=self.make_scheduler(predictor, arm)
            )
        else:
            challenger = Challenger(running, predictor, batcher=self.make_batcher(predictor, arm))
        await challenger.runner.start()
        self.challenger = challenger
        log.info("%s: %s on %.0f %%", running.mode, running.version, running.share * 100)

    async def stop(self) -> None:
        """Retire the challenger at shutdown (a look in flight is left to finish)."""
        if self._looking is not None:
            await asyncio.wait([self._looking])
        current, self.challenger = self.challenger, None
        if current is not None:
            await current.runner.stop()
