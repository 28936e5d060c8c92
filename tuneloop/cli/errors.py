"""What the CLI says when a command fails: one sentence and a way to mend it, not a traceback.

A wrong setting, an unreachable database or broker and a bad data file are a user's to fix, so
each is one line on stderr (exit 2 for what was given wrong, 1 for a service that does not
answer); anything else is a bug and keeps its traceback. `--debug` (or `TUNELOOP_DEBUG=1`)
shows the traceback always.
"""

from __future__ import annotations

import os
from typing import Any

import click
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError as DatabaseDown

from core.settings import ComponentSettings, Settings

USAGE = 2  # as click exits on a usage error
UNAVAILABLE = 1


def debugging() -> bool:
    """Whether tracebacks are wanted (`--debug` sets the variable for child processes too)."""
    return os.environ.get("TUNELOOP_DEBUG", "") not in ("", "0", "false")


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit code for a failure a user can mend, or None for a bug."""
    if isinstance(exc, ValidationError) and _settings_class(exc.title) is not None:
        return _setting_error(exc), USAGE
    if isinstance(exc, DatabaseDown):
        return (
            f"the database does not answer ({_first_line(exc.orig)}); is it running, and is "
            f"TUNELOOP_DATABASE_URL ({_safe_url()}) right?",
            UNAVAILABLE,
        )
    if _is_broker_down(exc):
        return (
            f"the broker does not answer ({_first_line(exc)}); is it running, and is "
            "TUNELOOP_BROKER_URL right?",
            UNAVAILABLE,
        )
    return None


class Cli(click.Group):
    """The top group: known failures become one line (see `explain`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None  # Ctrl-C: stop quietly
        except Exception as exc:
            known = None if debugging() else explain(exc)
            if known is None:
                raise
            message, code = known
            click.echo(f"Error: {message}", err=True)
            raise click.exceptions.Exit(code) from None


def _settings_class(title: str) -> type[BaseSettings] | None:
    classes: list[type[BaseSettings]] = [Settings, *ComponentSettings.__subclasses__()]
    return next((c for c in classes if c.__name__ == title), None)


def _setting_error(exc: ValidationError) -> str:
    cls = _settings_class(exc.title)
    prefix = str(cls.model_config.get("env_prefix", "")) if cls else ""
    parts = []
    for error in exc.errors(include_url=False):
        field = "_".join(str(p) for p in error["loc"]).upper()
        name = f"{prefix}{field}" if field else "settings"
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _is_broker_down(exc: BaseException) -> bool:
    from kombu.exceptions import OperationalError as BrokerDown

    return isinstance(exc, BrokerDown)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip().splitlines()
    return text[0] if text else type(exc).__name__


def _safe_url() -> str:
    """The configured URL with its password hidden (settings validated it already)."""
    url = os.environ.get("TUNELOOP_DATABASE_URL", "")
    return make_url(url).render_as_string(hide_password=True) if url else "unset: SQLite"
