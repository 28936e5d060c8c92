"""Admin routes of the loop: retrain runs, promotion and rollback (a key with the admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.answers import Lineage, RetrainAsked, Run, Version, error, errors
from api.auth import RESPONSES, Caller
from api.deps import Admin, AdminCaller, DbDep, RegistryDep, ServingDep
from api.errors import parse_body
from api.responses import JSON
from api.schemas import RetrainRequest
from core.lineage import lineage
from core.promotion import ArtifactBroken, promote_checked, rollback_checked
from core.queue import request_retrain, search_params
from core.registry import NoChampion, VersionNotFound
from core.states import RunTrigger
from core.store.events import Cause
from core.store.run_queries import RunNotFound, get_run, list_runs

# The body is optional: none (or an empty one) asks for a run as the settings have it.
RETRAIN_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": RetrainRequest.model_json_schema()}},
    }
}
# Every admin route reads or writes the store: 503 while it is down (`api.errors`).
router = APIRouter(dependencies=[Admin], tags=["admin"], responses={**RESPONSES, **errors(503)})


@router.post(
    "/v1/retrain",
    status_code=202,
    response_model=RetrainAsked,
    openapi_extra=RETRAIN_BODY,
    responses={
        **errors(413, 422),
        409: {"model": RetrainAsked, "description": "A run is in flight; its run_id is returned."},
    },
)
async def start_retrain(request: Request, db: DbDep) -> JSON:
    """Queue a manual retrain run (`{"search": N}`: with a hyper-parameter search of N trials);
    409 with the run in flight when there is one. A broker that does not answer still gets 202:
    the run is committed and is sent when the broker returns (`detail` says so)."""
    ask = await parse_body(request, RetrainRequest) if (await request.body()).strip() else None
    asked = await run_in_threadpool(
        request_retrain,
        db,
        request.app.state.celery,
        trigger=RunTrigger.MANUAL,
        params=_search(ask),
    )
    body = {"run_id": asked.run.run_id, "state": asked.run.state, "detail": asked.detail}
    return JSON(body, status_code=202 if asked.created else 409)


@router.get("/v1/retrain", response_model=list[Run])
async def retrain_runs(db: DbDep) -> list[dict[str, Any]]:
    """Retrain runs, newest first."""
    return [run.to_json() for run in await run_in_threadpool(list_runs, db)]


@router.get("/v1/retrain/{run_id}", response_model=Run, responses=errors(404, 422))
async def retrain_run(run_id: str, db: DbDep) -> dict[str, Any]:
    """One run: state, progress, metrics of both models, the verdict."""
    try:
        run = await run_in_threadpool(get_run, db, run_id)
    except RunNotFound:
        raise HTTPException(status_code=404, detail="unknown run_id") from None
    return run.to_json()


@router.post(
    "/v1/models/{version}/promote",
    response_model=Version,
    responses={
        **errors(404, 422),
        409: error("The version's artifact does not load; nothing changed."),
    },
)
async def promote(
    version: str, registry: RegistryDep, serving: ServingDep, caller: AdminCaller
) -> dict[str, Any]:
    """Make `version` the champion once it loads here; every replica swaps to it between batches."""
    try:
        info = await run_in_threadpool(
            promote_checked, registry, version, load=serving.load, cause=manual_cause(caller)
        )
    except VersionNotFound:
        raise HTTPException(status_code=404, detail="unknown version") from None
    except ArtifactBroken as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return info.to_dict()


# Unset fields stay out: a run or an ancestor no longer stored is shown by what is known of it.
@router.get(
    "/v1/models/{version}/lineage",
    response_model=Lineage,
    response_model_exclude_unset=True,
    responses=errors(404),
)
async def version_lineage(version: str, registry: RegistryDep) -> dict[str, Any]:
    """Why `version` serves, what it was trained on, who decided: its run (trigger, monitor
    check, data set, verdict), its events, and its parents up to the first version."""
    try:
        return await run_in_threadpool(lineage, registry, version)
    except VersionNotFound:
        raise HTTPException(status_code=404, detail="unknown version") from None


@router.post(
    "/v1/models/rollback",
    response_model=Version,
    responses={409: error("No earlier champion, or its artifact does not load; nothing changed.")},
)
async def rollback(
    registry: RegistryDep, serving: ServingDep, caller: AdminCaller
) -> dict[str, Any]:
    """Point the champion back at the one before it in the event history (repeated rollbacks
    walk back), once that version loads here."""
    try:
        info = await run_in_threadpool(
            rollback_checked, registry, load=serving.load, cause=manual_cause(caller)
        )
    except (NoChampion, ArtifactBroken) as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except VersionNotFound as exc:  # the history names a version deleted since
        raise HTTPException(status_code=409, detail=f"{exc} is no longer registered") from None
    return info.to_dict()


def _search(ask: RetrainRequest | None) -> dict[str, Any] | None:
    """The run's params for the search asked (None: none asked, the settings decide)."""
    if ask is None or ask.search is None:
        return None
    return search_params(ask.search, ask.budget_seconds)


def manual_cause(caller: Caller) -> Cause:
    """A change asked for over HTTP: the caller's key name decides it."""
    return Cause(caller.name or "open", "manual")
