"""Errors as HTTP answers: always `{"detail": ...}`, never the request body echoed back."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.routing import Match, Route

from api.responses import JSON
from core.logs import REQUEST_ID

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
# The store cannot be reached or used right now (refused, dropped, locked, unreadable, pool
# exhausted): a retry later may work, so it is a 503, not a 500. Other database errors are bugs.
STORE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def clean_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be huge or private)."""
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in errors
    ]


def unprocessable(detail: Any) -> HTTPException:
    """A 422 with a detail."""
    return HTTPException(status_code=422, detail=detail)


async def parse_body(request: Request, model: type[M]) -> M:
    """Validate the body as JSON with pydantic's own parser (strict UTF-8, no echo).

    The Content-Type header is not enforced: `curl -d` sends a form type with a JSON body.
    """
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise unprocessable(clean_errors(exc.errors(include_input=False))) from None


async def validation_handler(_request: Request, exc: Exception) -> JSON:
    """FastAPI's own validation errors (path, query, header), without the input echoed."""
    assert isinstance(exc, RequestValidationError)
    return JSON({"detail": clean_errors(list(exc.errors()))}, status_code=422)


async def store_unavailable_handler(request: Request, exc: Exception) -> JSON:
    """503 with Retry-After while the store is down; a normal answer keeps the connection open."""
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    # The driver's message, not SQLAlchemy's: that one quotes the statement and its parameters.
    log.warning("store unavailable (%s): %s", type(reason).__name__, str(reason).splitlines()[0])
    retry = str(request.app.state.settings.api.retry_after_seconds)
    return JSON({"detail": "store unavailable"}, status_code=503, headers={"Retry-After": retry})


async def method_not_allowed_handler(request: Request, exc: Exception) -> JSON:
    """A 405 whose `Allow` names every method of the path: Starlette names only those of the
    first route it matched, and GET and HEAD (or GET and POST) of one path are two routes here.
    The app's routes are in `state.routes` (FastAPI nests included routers in its own)."""
    methods = {
        method
        for route in request.app.state.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] == Match.PARTIAL
        for method in route.methods or ()
    }
    headers = {"Allow": ", ".join(sorted(methods))} if methods else getattr(exc, "headers", None)
    return JSON({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


async def internal_error_handler(_request: Request, _exc: Exception) -> JSON:
    """A bug's 500 as JSON, naming the request id (the server logs the traceback under it)."""
    # Starlette answers it outside every middleware, so the id header is added here.
    request_id = REQUEST_ID.get()
    headers = {"X-Request-ID": request_id} if request_id else None
    return JSON({"detail": "internal server error"}, status_code=500, headers=headers)
