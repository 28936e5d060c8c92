"""The review queue as the api serves it: options from settings, the served model as the embedder
for window rows stored without an embedding, and the answers' shapes."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import numpy as np
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.serving import Serving
from core.registry import Registry
from core.review_queue import EmbedTexts, QueueItem, QueueOptions, next_items
from core.settings import Settings
from core.store.db import Database

log = logging.getLogger(__name__)
# A queue call waits this long at most for the served model to embed the pool's texts.
EMBED_TIMEOUT_SECONDS = 30.0
# Rule: embedding a pool of 20 electronics reviews took 5.5 s and 200 took 33 s on the shared
# 2 cores (docs/measurements/review.md), time the forward lane is not serving predict; a pool
# with more rows lacking an embedding than this stays unembedded (k-center spreads what has one,
# the rest go in margin order). Only the k-center rules embed; the default, margin, never does.
EMBED_MAX_TEXTS = 32


class ReviewItem(BaseModel):
    prediction_id: str
    text: str | None = Field(description="The input (null when text logging is off).")
    label: str | None = Field(description="The model's label.")
    scores: dict[str, float]
    reason: str = Field(description="`rated_down`, `uncertain`, `diverse` or `drifted`.")
    lease_expires_at: datetime


class ReviewQueue(BaseModel):
    items: list[ReviewItem]


class NoChampion(LookupError):
    """No model is registered as champion yet."""


def options(settings: Settings) -> QueueOptions:
    """The queue's options: the monitor's window and reference, the review settings."""
    return QueueOptions(
        window=settings.monitor.window_size,
        reference=settings.monitor.reference_size,
        lease_seconds=settings.review.lease_seconds,
        rule=settings.review.rule,
        pool_factor=settings.review.pool_factor,
    )


async def queue(
    *,
    db: Database,
    registry: Registry,
    serving: Serving,
    settings: Settings,
    n: int,
    reviewer: str,
) -> list[QueueItem]:
    """The next `n` items leased to `reviewer` (NotClassification on a generation champion)."""
    champion = await run_in_threadpool(registry.champion)
    if champion is None:
        raise NoChampion("no champion registered")
    await serving.predlog.flush()  # the newest predictions are in the window
    embed = _embedder(serving, champion.version, asyncio.get_running_loop())
    return await run_in_threadpool(
        next_items,
        db,
        champion,
        n=n,
        reviewer=reviewer,
        options=options(settings),
        embed=embed,
    )


def _embedder(serving: Serving, version: str, loop: asyncio.AbstractEventLoop) -> EmbedTexts:
    """Texts -> pooled embeddings by the served model, from a worker thread; None when another
    version is served (its embeddings would not compare with the stored ones) or it fails."""

    def embed(texts: list[str]) -> np.ndarray | None:
        batcher = serving.batcher
        if batcher is None or serving.version != version or len(texts) > EMBED_MAX_TEXTS:
            return None
        future = asyncio.run_coroutine_threadsafe(batcher.submit(texts), loop)
        try:
            results = future.result(EMBED_TIMEOUT_SECONDS)
        except Exception:  # a full queue or a swap: the rule falls back to margin order
            log.warning("could not embed %d review candidates", len(texts), exc_info=True)
            return None
        vectors = [out.embedding for out, v in results if v == version]
        if len(vectors) != len(texts) or any(e is None for e in vectors):
            return None
        return np.stack([e for e in vectors if e is not None])

    return embed
