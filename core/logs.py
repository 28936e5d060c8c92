"""Process logging: one JSON object per line, or plain text, each naming its request when in one.

The api sets `REQUEST_ID` for each request; a filter on the one handler copies it onto every
record, so a line logged anywhere during that request (uvicorn's own included) names it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
NO_REQUEST = "-"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# uvicorn gives these handlers of their own unless told otherwise; ours should take their lines.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# Library notices no one can act on, by logger and message start: kombu warns at every connection
# that a URL without a host means localhost, and the default broker (the file transport,
# `filesystem://`) has no host to give. Anything else these loggers say still shows.
QUIETED = {"kombu.connection": ("No hostname was supplied",)}
# Celery's line per task (beat sends it, the worker receives it, it succeeded), by logger.
TASK_LIFECYCLE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class RequestIdFilter(logging.Filter):
    """Put the current request's id (or `-` outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", NO_REQUEST)
        if request_id != NO_REQUEST:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class DropNotices(logging.Filter):
    """Drop records whose message starts with one of `prefixes` (see QUIETED)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


class DemoteRoutine(logging.Filter):
    """Celery's INFO lines about routine tasks at DEBUG: beat's lease reaper and retention run every
    few seconds and succeed, which is nothing an operator acts on (a failure keeps its level, and
    what a task finds, a reaped run say, it logs itself)."""

    def __init__(self, tasks: Iterable[str]) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_name(record) not in self.tasks:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def _task_name(record: logging.LogRecord) -> object:
    """The task a Celery lifecycle line is about: the worker passes a mapping with its `name`,
    beat the schedule entry and then the task."""
    if isinstance(record.args, Mapping):
        return record.args.get("name")
    if isinstance(record.args, tuple) and len(record.args) == 2:
        return record.args[1]
    return None


def log_handler(*, json_lines: bool, stream: IO[str] | None = None) -> logging.Handler:
    """A handler (stderr by default) that writes JSON lines or text, with the request id."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str, *, json_lines: bool, routine_tasks: Iterable[str] = ()) -> None:
    """Send every logger, the server's too, through one handler on the root logger; Celery's
    lines about `routine_tasks` go to DEBUG."""
    root = logging.getLogger()
    root.handlers[:] = [log_handler(json_lines=json_lines)]
    root.setLevel(level.upper())
    for name in SERVER_LOGGERS:
        server = logging.getLogger(name)
        server.handlers.clear()
        server.propagate = True
    for name, prefixes in QUIETED.items():
        quieted = logging.getLogger(name)
        quieted.filters[:] = [f for f in quieted.filters if not isinstance(f, DropNotices)]
        quieted.addFilter(DropNotices(prefixes))
    for name in TASK_LIFECYCLE_LOGGERS:
        lifecycle = logging.getLogger(name)
        lifecycle.filters[:] = [f for f in lifecycle.filters if not isinstance(f, DemoteRoutine)]
        lifecycle.addFilter(DemoteRoutine(routine_tasks))
