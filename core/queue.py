"""The Celery app, built in one place from settings; tasks are called by name.

Redis in production (`TUNELOOP_BROKER_URL=redis://…`); by default kombu's filesystem transport
under `$TUNELOOP_HOME/broker`, so one machine needs no server. The filesystem transport removes a
message when it is read, so `acks_late` cannot redeliver there: the lease in the store (see
`core.store.runs`) is what recovers a dead worker on every transport.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.exceptions import KombuError

from core.settings import SEARCH_MAX_SECONDS, SEARCH_MAX_TRIALS, Settings
from core.states import RunTrigger
from core.store.db import Database
from core.store.records import RunRecord
from core.store.runs import create_run

log = logging.getLogger(__name__)

TRAIN_QUEUE = "train"
MONITOR_QUEUE = "monitor"
RETRAIN_TASK = "retrain.run"
REAP_TASK = "retrain.reap"
MONITOR_TASK = "monitor.check"
GC_TASK = "store.gc"
# Beat's housekeeping: frequent, and quiet when nothing is found (core.logs.DemoteRoutine).
ROUTINE_TASKS = (REAP_TASK, GC_TASK)


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
        visibility = settings.broker_visibility_seconds
        # Rule: look for overdue messages every tenth of the timeout, at most once a second and
        # at least every 10 s (kombu's default is a scan every ~100 s, longer than a short one).
        options = {
            "visibility_timeout": visibility,
            "unacked_restore_interval": min(10, max(1, visibility // 10)),
            "unacked_restore_throttle": 1,
        }
    schedule: dict[str, dict[str, object]] = {
        "reap-retrain-leases": {
            "task": REAP_TASK,
            "schedule": timedelta(seconds=settings.retrain.reap_interval),
        },
        "gc": {"task": GC_TASK, "schedule": timedelta(seconds=settings.retention.interval)},
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
            GC_TASK: {"queue": MONITOR_QUEUE},
            "retrain.*": {"queue": TRAIN_QUEUE},
            "monitor.*": {"queue": MONITOR_QUEUE},
        },
        beat_schedule=schedule,
        timezone="UTC",
        worker_hijack_root_logger=False,
        worker_max_tasks_per_child=20,  # training leaks some memory per run; recycle the child
    )
    return app


@dataclass(frozen=True)
class Requested:
    """A retrain request's outcome: the run, whether it is new, whether its task reached the
    broker (a committed run the broker did not take is sent again by the reaper, beat's
    `reap_stale`, once the broker answers)."""

    run: RunRecord
    created: bool
    sent: bool

    @property
    def detail(self) -> str:
        """One sentence for whoever asked."""
        run_id = self.run.run_id
        if not self.created:
            return f"run {run_id} is already in flight"
        if self.sent:
            return f"run {run_id} is queued"
        return (
            f"run {run_id} is committed and queued, but the broker does not answer: it will be "
            f"sent when the broker returns (cancel it with `tuneloop retrain --cancel {run_id}`)"
        )


def request_retrain(
    db: Database,
    app: Celery,
    *,
    trigger: RunTrigger,
    check_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Requested:
    """Queue a retrain run unless one is in flight (`check_id`: the monitor check that asks;
    `params`: what the run is asked, e.g. `search_params`, carried on its record); a broker
    that does not answer leaves the run committed and queued (see `Requested`)."""
    run, created = create_run(db, trigger=trigger, check_id=check_id, params=params)
    if not created:
        return Requested(run, created=False, sent=False)
    try:
        app.send_task(RETRAIN_TASK, kwargs={"run_id": run.run_id})
    except (KombuError, OSError) as exc:
        log.warning("retrain run %s not sent, the broker does not answer: %s", run.run_id, exc)
        return Requested(run, created=True, sent=False)
    return Requested(run, created=True, sent=True)


def search_params(trials: int, budget_seconds: float | None = None) -> dict[str, Any]:
    """A run's params asking for a hyper-parameter search of `trials` trials (0: the plain
    recipe, even where the search-after-reject setting would search) within `budget_seconds`
    (None: the worker's `TUNELOOP_RETRAIN_SEARCH_BUDGET_SECONDS`)."""
    if not 0 <= trials <= SEARCH_MAX_TRIALS:
        raise ValueError(f"search trials must be 0-{SEARCH_MAX_TRIALS}, not {trials}")
    if budget_seconds is not None and not 0 < budget_seconds <= SEARCH_MAX_SECONDS:
        raise ValueError(f"budget seconds must be in (0, {SEARCH_MAX_SECONDS:.0f}]")
    return {"search": {"n_trials": trials, "budget_seconds": budget_seconds}}
