"""The FastAPI app factory: `create_app(settings)`; the lifespan loads the champion once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware

from api import metrics
from api.auth import KeyTable
from api.docs import serve_docs
from api.errors import (
    STORE_UNAVAILABLE,
    internal_error_handler,
    method_not_allowed_handler,
    store_unavailable_handler,
    validation_handler,
)
from api.middleware import BodyLimit, HttpMetrics, RequestId
from api.predlog import PredictionLog
from api.protocol import ADMIT
from api.ratelimit import RateLimiter
from api.redis_buckets import make_buckets
from api.responses import JSON
from api.routes import (
    admin,
    canary,
    chat,
    feedback,
    feedback_batch,
    generate,
    health,
    predict,
    records,
)
from api.routes import monitor as monitor_routes
from api.routes import review as review_routes
from api.routes import review_page as review_page_routes
from api.serving import Loader, Serving
from api.store_metrics import StoreCollector
from core.queue import make_celery
from core.registry import Registry, VersionInfo
from core.runtime.adapters import VersionLoader
from core.runtime.predictor import Predictor
from core.settings import Settings, split_list
from core.store.db import Database
from core.store.keys import active_keys
from core.store.predictions import insert_predictions
from core.store.records import CheckRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorHooks:
    """What the api may call of monitoring, handed in by the composition root."""

    check: Callable[[Settings, Database], CheckRecord]  # run a check now, return it
    # a stored snapshot's path and its check -> the HTML report, the check's summary first
    render: Callable[[str, CheckRecord], str]
    features: Callable[[], tuple[str, ...]]  # drift feature names, exported before any check


def default_loader(settings: Settings) -> Loader:
    """Load a registered version with the api's device and token limits; adapter versions over
    one base share that base in memory (`core.runtime.adapters`)."""
    versions = VersionLoader(
        device=settings.device,
        max_length=settings.api.max_tokens,
        max_batch_tokens=settings.api.max_batch_tokens,
        generation_batch_size=settings.api.generation_batch_size,
    )

    def load(version: VersionInfo) -> Predictor:
        from pathlib import Path

        return versions.load(Path(version.artifact_path), version=version.version)

    return load


def allow_cors(app: FastAPI, origins: list[str]) -> None:
    """Let browser pages of `origins` call the api; none: no CORS middleware at all."""
    if not origins:
        return
    # Keys travel in Authorization, never in cookies: no credentials mode is needed.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )


def create_app(
    settings: Settings,
    *,
    load: Loader | None = None,
    db_factory: Callable[[str], Database] = Database,
    monitor: MonitorHooks | None = None,
) -> FastAPI:
    """Build the api; nothing is loaded or connected until the lifespan starts.

    The composition root hands in what the api may call of monitoring (it never imports it).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        if not settings.token:
            # A valid set-up, said once in the start-up block: not a warning an operator acts on.
            log.info("TUNELOOP_ADMIN_TOKEN is not set: only stored API keys are accepted")
        db = db_factory(settings.database_url)
        keys = KeyTable(
            partial(active_keys, db),
            admin_token=settings.token,
            refresh_seconds=settings.api.key_refresh_seconds,
        )
        registry = Registry(db, settings.artifacts)
        predlog = PredictionLog(
            partial(insert_predictions, db),
            max_buffer=settings.api.log_buffer_size,
            flush_seconds=settings.api.log_flush_seconds,
        )
        serving = Serving(
            settings=settings.api,
            registry=registry,
            load=load or default_loader(settings),
            predlog=predlog,
            canary=settings.canary,
        )
        app.state.db, app.state.registry, app.state.serving = db, registry, serving
        app.state.keys = keys
        app.state.limiter = RateLimiter(
            make_buckets(settings.broker_url), max_inputs=settings.api.max_inputs
        )
        app.state.celery = make_celery(settings)
        app.state.store_metrics = StoreCollector(
            db,
            monitor=settings.monitor,
            columns=monitor.features if monitor else tuple,
            canary=settings.canary,
        )
        await keys.start()
        await serving.start()
        try:
            yield {ADMIT: serving.admit}  # for the server's protocol, which refuses before the app
        finally:
            await serving.stop()
            await keys.stop()
            await app.state.limiter.buckets.close()
            db.dispose()
            metrics.forget_this_process()

    app = FastAPI(
        title="tuneloop",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=JSON,
        # Starlette's slash redirects build an absolute URL from the Host header, so a forged Host
        # would send clients elsewhere; every path is exact instead (404 with a trailing slash).
        redirect_slashes=False,
        description="Predictions, feedback and the loop that keeps the model good.",
        docs_url=None,  # served by serve_docs, from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.monitor = monitor
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.add_exception_handler(405, method_not_allowed_handler)
    for error in STORE_UNAVAILABLE:
        app.add_exception_handler(error, store_unavailable_handler)
    modules: tuple[ModuleType, ...] = (predict, generate, chat, feedback, feedback_batch)
    modules += (records, admin, canary, monitor_routes, review_routes, review_page_routes, health)
    for module in modules:
        app.include_router(module.router)
    app.state.routes = [route for module in modules for route in module.router.routes]
    serve_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    allow_cors(app, split_list(settings.api.cors_origins))
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestId)  # outermost: every answer and every log line has the id
    return app
