"""The composition root's glue: what the api may call of monitoring, and the check's context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.app import MonitorHooks
from core.queue import make_celery, request_retrain
from core.registry import Registry
from core.settings import Settings
from core.store.db import Database


def monitor_context(settings: Settings, db: Database) -> Any:
    """A monitor check context whose trigger queues a retrain by task name."""
    from monitor.service import Context

    app = make_celery(settings)
    return Context(
        settings=settings,
        db=db,
        registry=Registry(db, settings.artifacts),
        trigger=lambda trigger: request_retrain(db, app, trigger=trigger),
    )


def run_monitor_check(settings: Settings, db: Database) -> dict[str, Any]:
    """One monitor check, as the admin route and `tuneloop monitor check` run it."""
    from monitor.service import run_check

    result: dict[str, Any] = run_check(monitor_context(settings, db))
    return result


def render_report(path: str) -> str:
    """A stored Evidently snapshot as HTML."""
    from monitor.report import render_file

    return render_file(Path(path))


def drift_features() -> tuple[str, ...]:
    """The names of the drift features, so their series exist before the first check."""
    from monitor.features import FEATURES

    return FEATURES


def monitor_hooks() -> MonitorHooks:
    """Monitoring as the api sees it; monitor's heavy imports wait until first use."""
    return MonitorHooks(check=run_monitor_check, render=render_report, features=drift_features)
