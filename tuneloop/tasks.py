"""The Celery tasks: thin transports over plain functions, their contexts built by the wiring.

Each worker process builds its context after fork, on first use, and keeps it.
"""

from __future__ import annotations

import os
import socket
import uuid
from functools import cache
from typing import TYPE_CHECKING, Any

from celery import current_app, shared_task

from core.queue import GC_TASK, MONITOR_TASK, REAP_TASK, RETRAIN_TASK
from core.settings import get_settings
from core.store.db import Database
from tuneloop import wiring

if TYPE_CHECKING:
    import monitor.service
    import retrain.context


@cache
def monitor_context() -> monitor.service.Context:
    """This worker's monitor check context; its `start_retrain` queues on this worker's app."""
    settings = get_settings()
    context: monitor.service.Context = wiring.monitor_context(
        settings, Database(settings.database_url), app=current_app
    )
    return context


@cache
def retrain_context() -> retrain.context.Context:
    """This worker's settings, store and registry for retrain runs."""
    return wiring.retrain_context(get_settings())


def owner() -> str:
    """A lease owner id unique to this attempt."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@shared_task(name=MONITOR_TASK)
def check() -> dict[str, Any]:
    """Run one monitor check (beat schedules it every TUNELOOP_MONITOR_INTERVAL seconds); its
    JSON is the task's result."""
    from monitor.service import run_check

    return run_check(monitor_context()).to_json()


@shared_task(name=RETRAIN_TASK)
def run(run_id: str) -> str | None:
    """Train, evaluate, gate and maybe promote one run (a no-op unless its lease is free)."""
    from retrain.service import execute_run

    return execute_run(retrain_context(), run_id, owner=owner())


@shared_task(name=REAP_TASK)
def reap() -> list[str]:
    """Re-enqueue runs whose worker died (expired lease) or whose message was lost."""
    from retrain.service import reap_stale

    return reap_stale(retrain_context(), send=current_app.send_task)


@shared_task(name=GC_TASK)
def gc() -> dict[str, int]:
    """Delete what retention allows (beat, every TUNELOOP_RETENTION_INTERVAL seconds)."""
    from core.retention import collect

    ctx = retrain_context()  # the worker's settings and store; the registry goes unused
    return collect(ctx.settings, ctx.db).counts
