"""Errors as HTTP answers: always `{"detail": ...}`, never the request body echoed back."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.responses import JSON

M = TypeVar("M", bound=BaseModel)


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
