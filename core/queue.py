"""The Celery app, built in one place from settings; tasks are called by name.

Redis in production (`TUNELOOP_BROKER_URL=redis://…`); by default kombu's filesystem transport
under `$TUNELOOP_HOME/broker`, so one machine needs no server. The filesystem transport removes a
message when it is read, so `acks_late` cannot redeliver there: the lease in the store (see
`core.store.runs`) is what recovers a dead worker on every transport.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.runs import create_run

TRAIN_QUEUE = "train"
MONITOR_QUEUE = "monitor"
RETRAIN_TASK = "retrain.run"
REAP_TASK = "retrain.reap"
MONITOR_TASK = "monitor.check"
# Redis redelivers an unacknowledged message after this; longer than any run, the lease is faster.
REDIS_VISIBILITY_SECONDS = 6 * 3600


def broker_folder(settings: Settings) -> Path:
    """Where the embedded transport keeps messages."""
    return settings.home / "broker"


def make_celery(settings: Settings, *, monitor_interval: float | None = None) -> Celery:
    """The one Celery app: queues, reliability options, and beat's schedule."""
    url = settings.broker_url or "filesystem://"
    app = Celery("tuneloop", broker=url, set_as_current=True)
    options: dict[str, object] = {}
    if url.startswith("filesystem"):
        folder = broker_folder(settings)
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),  # else kombu writes into the cwd
            "store_processed": False,
        }
    elif url.startswith("redis"):
        options = {"visibility_timeout": REDIS_VISIBILITY_SECONDS}
    schedule: dict[str, dict[str, object]] = {
        "reap-retrain-leases": {
            "task": REAP_TASK,
            "schedule": timedelta(seconds=settings.retrain.reap_interval),
        },
    }
    if monitor_interval:
        schedule["monitor-check"] = {
            "task": MONITOR_TASK,
            "schedule": timedelta(seconds=monitor_interval),
        }
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=MONITOR_QUEUE,
        # Each queue its own exchange and key: with one shared key a direct exchange would
        # deliver every message to both queues.
        task_queues=[
            Queue(q, Exchange(q, type="direct"), routing_key=q)
            for q in (TRAIN_QUEUE, MONITOR_QUEUE)
        ],
        task_routes={
            REAP_TASK: {"queue": MONITOR_QUEUE},  # never stuck behind a training run
            "retrain.*": {"queue": TRAIN_QUEUE},
            "monitor.*": {"queue": MONITOR_QUEUE},
        },
        beat_schedule=schedule,
        timezone="UTC",
        worker_hijack_root_logger=False,
        worker_max_tasks_per_child=20,  # training leaks some memory per run; recycle the child
    )
    return app


def request_retrain(
    db: Database, app: Celery, *, trigger: RunTrigger | str
) -> tuple[dict[str, Any], bool]:
    """Queue a retrain run unless one is in flight; returns the run and whether it is new."""
    run, created = create_run(db, trigger=trigger)
    if created:
        app.send_task(RETRAIN_TASK, kwargs={"run_id": run["run_id"]})
    return run, created
