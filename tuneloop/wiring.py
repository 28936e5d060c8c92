"""The composition root's glue: registries, task contexts, what the api may call of monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.queue import make_celery, request_retrain
from core.registry import Registry
from core.settings import Settings, get_settings
from core.store.db import Database
from core.store.records import CheckRecord

if TYPE_CHECKING:
    from celery import Celery

    import monitor.service
    import retrain.context
    from api.app import MonitorHooks


def registry_of(settings: Settings, db: Database | None = None) -> Registry:
    """The model registry over the configured store (or `db`) and artifact directory."""
    return Registry(db or Database(settings.database_url), settings.artifacts)


def monitor_context(
    settings: Settings, db: Database, *, app: Celery | None = None
) -> monitor.service.Context:
    """A monitor check context whose `start_retrain` queues a retrain by task name."""
    from monitor.service import Context

    queue = app if app is not None else make_celery(settings)
    return Context(
        settings=settings,
        db=db,
        registry=registry_of(settings, db),
        start_retrain=lambda trigger, check_id: request_retrain(
            db, queue, trigger=trigger, check_id=check_id
        ),
    )


def retrain_context(settings: Settings) -> retrain.context.Context:
    """A retrain run's context: settings, store and registry."""
    from retrain.context import Context

    db = Database(settings.database_url)
    return Context(settings=settings, db=db, registry=registry_of(settings, db))


def run_monitor_check(settings: Settings, db: Database) -> CheckRecord:
    """One monitor check, as the admin route and `tuneloop monitor check` run it."""
    from monitor.service import run_check

    return run_check(monitor_context(settings, db))


def render_report(path: str, check: CheckRecord) -> str:
    """A stored Evidently snapshot as HTML, its check's summary first."""
    from monitor.report import render_file
    from monitor.report_summary import insert_summary, summary_html

    summary = summary_html(check, get_settings().monitor)
    return insert_summary(render_file(Path(path)), summary)


def drift_features() -> tuple[str, ...]:
    """The names of the drift features, so their series exist before the first check."""
    from monitor.features import FEATURES

    return FEATURES


def monitor_hooks() -> MonitorHooks:
    """Monitoring as the api sees it; monitor's heavy imports wait until first use."""
    from api.app import MonitorHooks

    return MonitorHooks(check=run_monitor_check, render=render_report, features=drift_features)
