"""Dependencies as `Annotated` aliases; tests override the functions behind them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.serving import Serving
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


def get_registry(request: Request) -> Registry:
    """The model registry."""
    registry: Registry = request.app.state.registry
    return registry


def require_admin(request: Request) -> None:
    """401 unless `Authorization: Bearer <TUNELOOP_ADMIN_TOKEN>`; with no token set, always 401."""
    token = get_settings(request).token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if (
        not token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.encode(), token.encode())
    ):
        raise HTTPException(
            status_code=401, detail="admin token required", headers={"WWW-Authenticate": "Bearer"}
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServingDep = Annotated[Serving, Depends(get_serving)]
DbDep = Annotated[Database, Depends(get_db)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
Admin = Depends(require_admin)
