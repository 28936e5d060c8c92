"""GET /v1/review/queue: the next predictions worth a reviewer's label, each leased to them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api import review
from api.answers import errors
from api.auth import RESPONSES
from api.deps import DbDep, RegistryDep, ReviewCaller, ServingDep, SettingsDep
from core.keys import ADMIN_TOKEN_NAME
from core.review_queue import NotClassification

router = APIRouter(tags=["review"], responses=RESPONSES)


@router.get(
    "/v1/review/queue",
    response_model=review.ReviewQueue,
    responses=errors(409, 422, 503),
)
async def review_queue(
    db: DbDep,
    registry: RegistryDep,
    serving: ServingDep,
    settings: SettingsDep,
    caller: ReviewCaller,
    n: Annotated[int, Query(ge=1, le=100, description="How many items.")] = 10,
) -> dict[str, Any]:
    """Up to n predictions to label (rated-down first, then the least sure, spread out), each
    leased to the caller for `TUNELOOP_REVIEW_LEASE_SECONDS`; labels go to POST /v1/feedback
    with `source: "review"`."""
    try:
        items = await review.queue(
            db=db,
            registry=registry,
            serving=serving,
            settings=settings,
            n=n,
            reviewer=caller.name or ADMIN_TOKEN_NAME,
        )
    except review.NoChampion:
        return {"items": []}
    except NotClassification as exc:
        raise HTTPException(status_code=409, detail=f"review is for classifiers: {exc}") from None
    return {"items": [vars(item) for item in items]}
