"""What the predict route calls: the batcher, the prediction log and the champion watcher."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from api import metrics, runners, tasks
from api.batcher import Batcher, NotServing
from api.canary import CanarySlot
from api.generation import CANCELLED, Handle, Scheduler
from api.logrows import generation_record, prediction_record
from api.predlog import PredictionLog
from api.shadow import Mirror
from core.promotion import Loader
from core.registry import Registry
from core.runtime.predictor import Output, Predictor
from core.runtime.textgen import Generator
from core.settings import ApiSettings, CanarySettings
from core.store.canary import CANARY_ARM, CHAMPION_ARM, SHADOW_ARM

log = logging.getLogger(__name__)

# Rule: a champion that failed to load is tried again only this long after. A registered artifact
# never changes, so a retry every poll would fail the same way and reload the weights each time;
# a transient failure (out of memory beside the served model) still heals without a restart.
RETRY_BROKEN_SECONDS = 300.0


class WrongTask(Exception):
    """The served model is of the other task kind (a classifier asked to generate, or not)."""


@dataclass(frozen=True)
class PredictResult:
    model_version: str
    predictions: list[dict[str, Any]]
    arm: str = CHAMPION_ARM


class Serving:
    """Loads the champion, serves it through the batcher (classification) or the generation
    scheduler, and swaps in a new one between batches or decoding steps."""

    def __init__(
        self,
        *,
        settings: ApiSettings,
        registry: Registry,
        load: Loader,
        predlog: PredictionLog,
        canary: CanarySettings,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.load = load
        self.predlog = predlog
        self.batcher: Batcher | None = None
        self.scheduler: Scheduler | None = None
        self._device: Any = None
        self.version: str | None = None
        self.task: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._broken: tuple[str, float] | None = None  # version that failed, when to retry it
        self.load_error: str | None = None  # why the champion does not load, while it does not
        self._rng = random.Random()
        self._counters: dict[tuple[str, str], Any] = {}  # PREDICTIONS children, labels() once
        self.canary = CanarySlot(
            registry=registry,
            load=load,
            batcher=lambda predictor, arm: runners.batcher(predictor, settings, arm=arm),
            scheduler=self._scheduler,
            settings=canary,
        )
        self.mirror = Mirror(predlog, log_text=settings.log_text)

    @property
    def ready(self) -> bool:
        """A model is loaded and the batcher (or the generation scheduler) runs."""
        return self.batcher is not None or self.scheduler is not None

    async def start(self) -> None:
        """Load the champion if there is one, start the log writer and the watcher."""
        await self.predlog.start()
        metrics.MODEL_READY.set(0)
        await self._refresh_or_keep()
        self._watcher = asyncio.create_task(self._watch(), name="champion-watcher")

    async def stop(self) -> None:
        """Stop watching and batching; flush the log."""
        await tasks.cancel(self._watcher)
        await self.mirror.stop()
        await self.canary.stop()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.predlog.stop()

    async def refresh(self) -> bool:
        """Load the champion beside the served model and swap if it changed; True on a swap.

        A champion that does not load is logged and skipped until RETRY_BROKEN_SECONDS have passed.
        """
        champion = await asyncio.to_thread(self.registry.champion)
        if champion is None or champion.version == self.version or self._skips(champion.version):
            return False
        try:
            predictor = self.canary.predictor_of(champion.version)
            if predictor is None:
                predictor = await asyncio.to_thread(self.load, champion)
        except Exception as exc:  # a broken artifact must not take serving down
            self._broken = (champion.version, time.monotonic() + RETRY_BROKEN_SECONDS)
            reason = str(exc).splitlines()[0] if str(exc) else ""
            self.load_error = f"champion {champion.version} does not load: {type(exc).__name__}"
            self.load_error += f": {reason}" if reason else ""
            log.exception(
                "could not load champion %s; still serving %s, next try in %.0f s",
                champion.version,
                self.version,
                RETRY_BROKEN_SECONDS,
            )
            return False
        self._broken = self.load_error = None
        if isinstance(predictor, Generator):
            await self._serve_generator(predictor)
        else:
            await self._serve_classifier(predictor)
        log.info("serving %s (was %s)", champion.version, self.version)
        self.version, self.task = champion.version, champion.task
        self._device = getattr(predictor, "device", None)
        metrics.set_model(champion.version, champion.task)
        metrics.set_gpu_memory(self._device)
        return True

    async def _serve_classifier(self, predictor: Predictor) -> None:
        if self.scheduler is not None:  # the champion changed task kind
            await self.scheduler.stop()
            self.scheduler = None
        if self.batcher is None:
            self.batcher = runners.batcher(predictor, self.settings)
            await self.batcher.start()
        else:
            self.batcher.swap(predictor)

    async def _serve_generator(self, generator: Generator) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
            self.batcher = None
        if self.scheduler is None:
            self.scheduler = self._scheduler(generator)
            await self.scheduler.start()
        else:
            self.scheduler.swap(generator)

    def _scheduler(self, generator: Generator, arm: str = CHAMPION_ARM) -> Scheduler:
        """A generation scheduler of `arm`: a shadow's generations go to the mirror, the
        others' to the log."""
        finish = self.mirror.finished if arm == SHADOW_ARM else self._log_generation
        return runners.scheduler(generator, self.settings, on_finish=finish, arm=arm)

    @property
    def generator(self) -> Generator:
        """The served generator; WrongTask when a classifier is served, NotServing before any."""
        if self.scheduler is None:
            if self.batcher is not None:
                raise WrongTask("the served model is a classifier: use /v1/predict")
            raise NotServing("no model loaded yet")
        return self.scheduler.generator

    def scheduler_for(self, client: str | None) -> Scheduler:
        """The scheduler of `client`'s arm (the canary's while one runs and the client falls in
        its share), chosen before tokenizing: the arms' tokenizers may differ. WrongTask when a
        classifier is served, NotServing before any model."""
        self.generator  # noqa: B018 - raises the reason
        assert self.scheduler is not None  # `generator` raised otherwise
        challenger = self.canary.challenger
        if challenger is not None and challenger.scheduler and challenger.serves(client):
            return challenger.scheduler
        return self.scheduler

    def cancel(self, handle: Handle) -> None:
        """The client went away: its sequence leaves the batch at the next step."""
        challenger = self.canary.challenger
        for scheduler in (self.scheduler, challenger.scheduler if challenger else None):
            if scheduler is not None:  # only the one that runs it holds the handle
                scheduler.cancel(handle)

    def _log_generation(self, handle: Handle) -> None:
        """Log a finished generation; a whole one may be mirrored to a running shadow."""
        keep = self._rng.random() < self.settings.embedding_sample_rate
        self.predlog.add(
            generation_record(handle, log_text=self.settings.log_text, keep_embedding=keep)
        )
        challenger = self.canary.challenger
        if handle.finish_reason == CANCELLED or challenger is None or not challenger.scheduler:
            return
        if challenger.mirrors(self._rng.random()):
            self.mirror.send_generation(challenger, handle)

    def _predicted(self, version: str, label: str) -> Any:
        key = (version, label)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.PREDICTIONS.labels(
                model_version=version, label=label
            )
        return counter

    def _skips(self, version: str) -> bool:
        """True while `version` failed to load and its retry time has not come."""
        if self._broken is None:
            return False
        broken, retry_at = self._broken
        return version == broken and time.monotonic() < retry_at

    async def _refresh_or_keep(self) -> None:
        try:
            await self.refresh()
            if self.task is not None:
                await self.canary.sync(self.version)
        except Exception:  # a store outage must not take serving down either
            log.exception("could not refresh the champion; still serving %s", self.version)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            await self._refresh_or_keep()

    def admit(self, n: int = 1) -> None:
        """QueueFull when `n` more texts would not fit the classifier's queue or its deadline
        (nothing to refuse while no classifier is loaded: `predict` says why)."""
        if self.batcher is not None:
            self.batcher.admit(n)

    async def predict(self, texts: list[str], client: str | None = None) -> PredictResult:
        """Run texts through the batcher of `client`'s arm and log each prediction."""
        if self.batcher is None:
            if self.scheduler is not None:
                raise WrongTask("the served model is a generator: use /v1/generate")
            raise NotServing("no model loaded yet")
        batcher, arm = self.batcher, CHAMPION_ARM
        challenger = self.canary.challenger
        if challenger is not None and challenger.batcher and challenger.serves(client):
            batcher, arm = challenger.batcher, CANARY_ARM
        started = time.perf_counter()
        results = await batcher.submit(texts)
        latency_ms = (time.perf_counter() - started) * 1000.0
        metrics.set_gpu_memory(self._device)
        answers = []
        for text, (output, version) in zip(texts, results, strict=True):
            record = prediction_record(
                text=text,
                output=output,
                version=version,
                task=self.task or "classification",
                latency_ms=latency_ms,
                log_text=self.settings.log_text,
                keep_embedding=self._rng.random() < self.settings.embedding_sample_rate,
                arm=arm,
            )
            self.predlog.add(record)
            self._predicted(version, output.label or "").inc()
            answers.append(_answer(record["id"], output))
        if challenger is not None and challenger.mirrors(self._rng.random()):
            self.mirror.send(challenger, texts, [a["id"] for a in answers])
        return PredictResult(model_version=results[-1][1], predictions=answers, arm=arm)


def _answer(prediction_id: str, output: Output) -> dict[str, Any]:
    if output.text is not None:
        return {"id": prediction_id, "text": output.text, "truncated": output.truncated}
    return {
        "id": prediction_id,
        "label": output.label,
        "score": output.score,
        "scores": output.scores,
        "truncated": output.truncated,
    }
