"""Logging as `tuneloop serve` sets it up: one handler, JSON in production unless told otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from core.logs import JsonFormatter, RequestIdFilter
from core.settings import Settings
from tuneloop.server import configure

TOKEN = "a-production-grade-admin-token"


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (pytest's capture lives on it)."""
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("env", "log_format", "json_lines"),
    [
        ("production", "auto", True),
        ("development", "auto", False),
        ("development", "json", True),
        ("production", "text", False),
    ],
)
def test_serve_logs_through_one_handler_json_in_production_by_default(
    root: logging.Logger, env: str, log_format: str, json_lines: bool
) -> None:
    configure(Settings(env=env, log_format=log_format, admin_token=TOKEN, log_level="warning"))
    (handler,) = root.handlers
    assert isinstance(handler.formatter, JsonFormatter) == json_lines
    assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
    assert root.level == logging.WARNING
    uvicorn = logging.getLogger("uvicorn.error")
    assert uvicorn.propagate and not uvicorn.handlers


def _celery_lines() -> None:
    """The lines Celery logs around tasks, with its own messages and arguments."""
    from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

    beat, strategy = logging.getLogger("celery.beat"), logging.getLogger("celery.worker.strategy")
    trace = logging.getLogger("celery.app.trace")
    beat.info("Scheduler: Sending due task %s (%s)", "reap-retrain-leases", "retrain.reap")
    strategy.info(LOG_RECEIVED, {"id": "1", "name": "retrain.reap"})
    trace.info(LOG_SUCCESS, {"id": "1", "name": "retrain.reap", "runtime": 0.1, "return_value": []})
    beat.info("Scheduler: Sending due task %s (%s)", "monitor-check", "monitor.check")
    trace.info(LOG_SUCCESS, {"id": "2", "name": "monitor.check", "runtime": 1, "return_value": {}})
    trace.error("Task %(name)s[%(id)s] raised", {"id": "3", "name": "retrain.reap"})


@pytest.mark.parametrize("level", ["info", "debug"])
def test_routine_task_lines_go_to_debug_and_the_rest_keep_their_level(
    root: logging.Logger, level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(Settings(log_format="text", log_level=level))
    _celery_lines()
    lines = capsys.readouterr().err.splitlines()
    reap = [line for line in lines if "retrain.reap" in line]
    assert [line.split()[2] for line in reap] == (
        ["DEBUG", "DEBUG", "DEBUG", "ERROR"] if level == "debug" else ["ERROR"]
    )
    assert sum("monitor.check" in line and " INFO " in line for line in lines) == 2
