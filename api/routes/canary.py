"""Canary and shadow routes (admin): start a challenger on a share of the clients, or mirror a
share of the requests to it; stop either; read the test, or the shadow's agreement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.answers import error, errors
from api.auth import RESPONSES
from api.deps import Admin, AdminCaller, DbDep, RegistryDep
from api.errors import parse_body
from api.routes.admin import manual_cause
from api.schemas import CanaryRequest, ShadowRequest
from core.canary import CanaryRefused, NoCanary, start_canary, stop_canary
from core.registry import VersionNotFound
from core.shadow import shadow_state, start_shadow, stop_shadow
from core.store.canary import CanaryRunning, latest_canary

BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CanaryRequest.model_json_schema()}},
    }
}
SHADOW_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": ShadowRequest.model_json_schema()}},
    }
}
router = APIRouter(dependencies=[Admin], tags=["admin"], responses={**RESPONSES, **errors(503)})


async def _slot_call(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a canary/shadow slot change off the loop; its refusals as 404 and 409 answers."""
    try:
        row = await run_in_threadpool(call, *args, **kwargs)
    except VersionNotFound:
        raise HTTPException(status_code=404, detail="unknown version") from None
    except NoCanary as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (CanaryRefused, CanaryRunning) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    result: dict[str, Any] = row.to_dict()
    return result


@router.get("/v1/models/canary", responses=errors(404))
async def canary_state(db: DbDep) -> dict[str, Any]:
    """The running canary (else the last one): share, each arm's items and means, the test's
    statistics and decision."""
    row = await run_in_threadpool(latest_canary, db)
    if row is None:
        raise HTTPException(status_code=404, detail="no canary has run")
    return row.to_dict()


@router.post(
    "/v1/models/{version}/canary",
    status_code=201,
    openapi_extra=BODY,
    responses={
        **errors(404, 413, 422),
        409: error("Another canary runs, or the version has not passed the offline gate."),
    },
)
async def start(
    version: str,
    request: Request,
    registry: RegistryDep,
    caller: AdminCaller,
) -> dict[str, Any]:
    """Serve `version` to `share` of the clients, sticky per key; every replica follows within
    its champion poll. The sequential test then promotes, aborts or lets it expire."""
    body = await parse_body(request, CanaryRequest)
    return await _slot_call(
        start_canary, registry, version, share=body.share, cause=manual_cause(caller)
    )


@router.delete("/v1/models/{version}/canary", responses=errors(404))
async def stop(version: str, registry: RegistryDep, caller: AdminCaller) -> dict[str, Any]:
    """Stop the canary of `version` by hand: the champion serves every client again."""
    return await _slot_call(stop_canary, registry, version, cause=manual_cause(caller))


@router.get("/v1/models/shadow", responses=errors(404))
async def shadow(registry: RegistryDep) -> dict[str, Any]:
    """The running shadow (else the last one): share, its predictions, how many were compared
    with the champion's and the share that gave the same label (or text); for generation also
    ROUGE-L against the champion's texts and, per arm, against the preferred outputs given on
    the champion's."""
    state = await run_in_threadpool(shadow_state, registry)
    if state is None:
        raise HTTPException(status_code=404, detail="no shadow has run")
    return state


@router.post(
    "/v1/models/{version}/shadow",
    status_code=201,
    openapi_extra=SHADOW_BODY,
    responses={
        **errors(404, 413, 422),
        409: error("A canary or shadow runs, or the version is the champion or of another task."),
    },
)
async def start_mirror(
    version: str, request: Request, registry: RegistryDep, caller: AdminCaller
) -> dict[str, Any]:
    """Also run `version` on `share` of the champion's requests (default all), off the response
    path: its answers are stored with arm `shadow` and never returned."""
    body = await parse_body(request, ShadowRequest) if await request.body() else ShadowRequest()
    return await _slot_call(
        start_shadow, registry, version, share=body.share, cause=manual_cause(caller)
    )


@router.delete("/v1/models/{version}/shadow", responses=errors(404))
async def stop_mirror(version: str, registry: RegistryDep, caller: AdminCaller) -> dict[str, Any]:
    """Stop the shadow of `version`; its counts stay on the record."""
    return await _slot_call(stop_shadow, registry, version, cause=manual_cause(caller))
