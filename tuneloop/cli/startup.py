"""What `tuneloop up` and `serve` say as they start: where the api is, in which mode, with which
model, and where state lives; and the notices of libraries that are no one's to act on, dropped
at their source."""

from __future__ import annotations

import warnings

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from core.queue import broker_folder
from core.registry import VersionInfo
from core.settings import Settings
from tuneloop.server import open_mode_notice


def summary(
    settings: Settings, *, host: str, port: int, champion: VersionInfo | None, processes: str
) -> str:
    """The start-up block: one labelled line each for the api, the mode, the model, the state."""
    if settings.api.open:
        mode = open_mode_notice(host, port)
    else:
        mode = f"{settings.env}: every route takes a key (`tuneloop keys create`)"
        if not settings.token:
            mode += "; no admin token (TUNELOOP_ADMIN_TOKEN), so stored keys only"
    lines = {
        "api": f"http://{host}:{port} (docs at /docs); {processes}",
        "mode": mode,
        "model": _model(champion),
        "state": _state(settings),
    }
    return "\n".join(f"tuneloop {name:5}  {text}" for name, text in lines.items())


def _model(champion: VersionInfo | None) -> str:
    if champion is None:
        return "no champion yet (`tuneloop init`): the api is not ready until there is one"
    return f"{champion.version}, {champion.task} on {champion.base_model}"


def _state(settings: Settings) -> str:
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    if settings.broker_url:
        broker = maybe_sanitize_url(settings.broker_url)
    else:
        broker = f"files in {broker_folder(settings)}"
    return f"{settings.home}; database {database}; broker {broker}; models in {settings.artifacts}"


def quiet_worker_notices() -> None:
    """Drop Celery's warning that the worker runs as root (a container's default user).

    Celery warns because a root worker that unpickles messages runs whatever a message holds; it
    refuses to start at all in that case. Ours are JSON (Celery's default and only accepted
    content), so the warning says nothing to act on: the filter names the message, and every
    other SecurityWarning still shows.
    """
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings(
        "ignore", message="You're running the worker with superuser", category=SecurityWarning
    )
