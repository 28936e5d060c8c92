"""Read routes: stored predictions (admin) and model versions (predict, as OpenAI's clients list
models)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.answers import Models, StoredPrediction, errors
from api.auth import RESPONSES
from api.deps import Admin, DbDep, Predicting, RegistryDep, ServingDep
from api.ratelimit import RESPONSES as LIMITED
from core.states import VersionStatus
from core.store.prediction_reads import get_prediction

router = APIRouter(responses={**RESPONSES, **errors(503)})  # both read the store


@router.get(
    "/v1/predictions/{prediction_id}",
    dependencies=[Admin],
    tags=["admin"],
    response_model=StoredPrediction,
    responses=errors(404, 422),
)
async def prediction(prediction_id: str, db: DbDep, serving: ServingDep) -> dict[str, Any]:
    """One stored prediction with its feedback."""
    await serving.predlog.flush_if_pending(prediction_id)
    found = await run_in_threadpool(get_prediction, db, prediction_id)
    if found is None:
        raise HTTPException(status_code=404, detail="unknown prediction_id")
    return found


@router.get(
    "/v1/models",
    dependencies=[Predicting],
    tags=["models"],
    response_model=Models,
    responses=LIMITED,
)
async def models(registry: RegistryDep, serving: ServingDep) -> dict[str, Any]:
    """Registered versions, newest first, and the one this replica serves."""
    versions = await run_in_threadpool(registry.list)
    champion = next((v.version for v in versions if v.status == VersionStatus.CHAMPION), None)
    return {
        "champion": champion,
        "serving": serving.version,
        "versions": [v.to_dict() for v in versions],
    }
