"""Celery task of monitoring: thin; the work is in `monitor.service.run_check`."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import current_app, shared_task

from core.queue import MONITOR_TASK, request_retrain
from core.registry import Registry
from core.settings import get_settings
from core.store.db import Database
from monitor.service import Context, run_check


@cache
def context() -> Context:
    """This worker process's settings and store, built after fork on first use."""
    settings = get_settings()
    db = Database(settings.database_url)
    return Context(
        settings=settings,
        db=db,
        registry=Registry(db, settings.artifacts),
        trigger=lambda trigger: request_retrain(db, current_app, trigger=trigger),
    )


@shared_task(name=MONITOR_TASK)
def check() -> dict[str, Any]:
    """Run one monitor check (beat schedules it every TUNELOOP_MONITOR_INTERVAL seconds)."""
    return run_check(context())
