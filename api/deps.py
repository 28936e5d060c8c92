"""Dependencies as `Annotated` aliases; tests override the functions behind them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Caller
from api.ratelimit import RateLimiter, admit
from api.serving import Serving
from core.keys import Scope
from core.registry import Registry
from core.settings import Settings
from core.store.db import Database


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_serving(request: Request) -> Serving:
    """The serving state (batcher, log, champion)."""
    serving: Serving = request.app.state.serving
    return serving


def get_db(request: Request) -> Database:
    """The store."""
    db: Database = request.app.state.db
    return db


def get_limiter(request: Request) -> RateLimiter:
    """The per-key rate limits."""
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def get_registry(request: Request) -> Registry:
    """The model registry."""
    registry: Registry = request.app.state.registry
    return registry


# Declares the scheme in OpenAPI; `authorize` reads the header itself (open mode ignores it).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `tuneloop keys create`, or the admin token (every scope).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def require(
    scope: Scope,
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Caller]]:
    """A dependency answering the caller allowed `scope`, else 401 or 403 (`api.auth`), or 429
    over its key's request limit (`api.ratelimit`); FastAPI runs it once per request."""

    async def dependency(request: Request, _credentials: Credentials) -> Caller:
        # async: FastAPI would run a sync dependency in its thread pool, two hops per request.
        return await admit(request.app.state, request.headers.get("authorization"), scope)

    return dependency


require_predict = require(Scope.PREDICT)
require_feedback = require(Scope.FEEDBACK)
require_admin = require(Scope.ADMIN)
require_review = require(Scope.REVIEW)


async def require_feedback_or_review(request: Request, _credentials: Credentials) -> Caller:
    """Feedback takes a `feedback` key, or a `review` key for a reviewer's labels (the route
    checks that the body's source matches the scope)."""
    authorization = request.headers.get("authorization")
    try:
        return await admit(request.app.state, authorization, Scope.FEEDBACK)
    except HTTPException as exc:
        if exc.status_code != 403:
            raise
        try:
            return await admit(request.app.state, authorization, Scope.REVIEW)
        except HTTPException:
            raise exc from None  # neither scope: the feedback scope is the one to ask for


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServingDep = Annotated[Serving, Depends(get_serving)]
DbDep = Annotated[Database, Depends(get_db)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
Admin = Depends(require_admin)
Predicting = Depends(require_predict)
PredictCaller = Annotated[Caller, Depends(require_predict)]
AdminCaller = Annotated[Caller, Depends(require_admin)]
FeedbackCaller = Annotated[Caller, Depends(require_feedback)]
FeedbackOrReviewCaller = Annotated[Caller, Depends(require_feedback_or_review)]
ReviewCaller = Annotated[Caller, Depends(require_review)]
