"""What the client raises: one `TuneloopError`, a subclass per status the api answers with."""

from __future__ import annotations

from typing import Any

import httpx


class TuneloopError(Exception):
    """The api refused a call (`status`, its `detail`), or gave no answer (`status` None)."""

    def __init__(self, status: int | None, detail: Any, *, retry_after: float | None = None):
        self.status = status
        self.detail = detail
        self.retry_after = retry_after  # seconds the api asked to wait (429, 503)
        super().__init__(f"{status or 'no answer'}: {_readable(detail)}")


class Unauthorized(TuneloopError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(TuneloopError):
    """403: the key lacks the route's scope."""


class NotFound(TuneloopError):
    """404: an unknown prediction, run, version or check."""


class Conflict(TuneloopError):
    """409: the call does not fit the state (a classifier asked to generate, a reused key)."""


class PayloadTooLarge(TuneloopError):
    """413: the body is over the api's limit."""


class Unprocessable(TuneloopError):
    """422: the request is invalid; `detail` says why (a sentence or a list of field errors)."""


class RateLimited(TuneloopError):
    """429: too many requests; retried until the client's retries run out."""


class Unavailable(TuneloopError):
    """503: queue full, no model loaded, or a generation interrupted."""


class NoAnswer(TuneloopError):
    """No answer: the api could not be reached, or the connection failed mid-answer."""


BY_STATUS: dict[int, type[TuneloopError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    429: RateLimited,
    503: Unavailable,
}


def error_of(response: httpx.Response, *, retry_after: float | None = None) -> TuneloopError:
    """The error an answer stands for, carrying the api's `detail` (else the body's start)."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = response.text[:500] or response.reason_phrase
    kind = BY_STATUS.get(response.status_code, TuneloopError)
    return kind(response.status_code, detail, retry_after=retry_after)


def _readable(detail: Any) -> str:
    """A 422's field errors as `loc: msg; …`, anything else as it is."""
    if isinstance(detail, list) and all(isinstance(e, dict) for e in detail):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in detail
        )
    return str(detail)
