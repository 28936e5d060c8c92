"""Admin routes of monitoring: run a check now, list checks, render a check's report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.answers import Check, error, errors
from api.auth import RESPONSES
from api.deps import Admin, DbDep, SettingsDep
from core.store.monitoring import get_check, recent_checks, report_path

router = APIRouter(dependencies=[Admin], tags=["admin"], responses={**RESPONSES, **errors(503)})


@router.post(
    "/v1/monitor/check",
    response_model=Check,
    responses={503: error("The store is down, or no monitor is wired.")},
)
async def check_now(request: Request, db: DbDep, settings: SettingsDep) -> dict[str, Any]:
    """Run a monitor check synchronously and return it."""
    hooks = request.app.state.monitor
    if hooks is None:
        raise HTTPException(status_code=503, detail="monitoring is not wired into this api")
    checked = await run_in_threadpool(hooks.check, settings, db)
    return checked.to_json()


@router.get("/v1/monitor/checks", response_model=list[Check], responses=errors(422))
async def checks(db: DbDep, limit: int = 50) -> list[dict[str, Any]]:
    """Recent checks, newest first."""
    found = await run_in_threadpool(recent_checks, db, limit=min(max(limit, 1), 500))
    return [c.to_json() for c in found]


@router.get("/v1/monitor/checks/{check_id}", response_model=Check, responses=errors(404, 422))
async def check(check_id: str, db: DbDep) -> dict[str, Any]:
    """One check."""
    found = await run_in_threadpool(get_check, db, check_id)
    if found is None:
        raise HTTPException(status_code=404, detail="unknown check id")
    return found.to_json()


@router.get(
    "/v1/monitor/checks/{check_id}/report", response_class=HTMLResponse, responses=errors(404, 422)
)
async def report(check_id: str, request: Request, db: DbDep) -> HTMLResponse:
    """The Evidently report of a check, rendered from its stored snapshot on demand."""
    hooks = request.app.state.monitor
    path = await run_in_threadpool(report_path, db, check_id)
    found = await run_in_threadpool(get_check, db, check_id)
    if hooks is None or path is None or found is None:
        raise HTTPException(status_code=404, detail="no report for this check")
    return HTMLResponse(await run_in_threadpool(hooks.render, path, found))
