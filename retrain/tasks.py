"""Celery tasks of the retraining loop: thin and idempotent; the work is in `retrain.service`."""

from __future__ import annotations

import os
import socket
import uuid
from functools import cache

from celery import current_app, shared_task

from core.queue import REAP_TASK, RETRAIN_TASK
from core.registry import Registry
from core.settings import get_settings
from core.store.db import Database
from retrain.context import Context
from retrain.service import execute_run, reap_stale


@cache
def context() -> Context:
    """Settings, store and registry of this worker process, built after fork on first use."""
    settings = get_settings()
    db = Database(settings.database_url)
    return Context(settings=settings, db=db, registry=Registry(db, settings.artifacts))


def owner() -> str:
    """A lease owner id unique to this attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@shared_task(name=RETRAIN_TASK)
def run(run_id: str) -> str | None:
    """Train, evaluate, gate and maybe promote one run (a no-op unless its lease is free)."""
    return execute_run(context(), run_id, owner=owner())


@shared_task(name=REAP_TASK)
def reap() -> list[str]:
    """Re-enqueue runs whose worker died (expired lease) or whose message was lost."""
    return reap_stale(context(), send=current_app.send_task)
