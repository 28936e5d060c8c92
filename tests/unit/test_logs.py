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
