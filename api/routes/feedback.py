"""POST /v1/feedback: a 201 means the row is committed."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request

from api import metrics
from api.answers import errors
from api.deps import DbDep, FeedbackOrReviewCaller, ServingDep, SettingsDep
from api.errors import parse_body, unprocessable
from api.predlog import after_other_flush
from api.ratelimit import RESPONSES, admit
from api.responses import JSON
from api.schemas import FeedbackRequest, FeedbackResponse
from core.keys import Scope
from core.store.predictions import (
    IdempotencyConflict,
    InvalidLabel,
    PredictionNotFound,
    WrongFeedbackKind,
    submit_feedback,
)

router = APIRouter(tags=["feedback"], responses=RESPONSES)
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": FeedbackRequest.model_json_schema()}},
    }
}


@router.post(
    "/v1/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    openapi_extra=BODY,
    responses=errors(404, 413, 422, 503),
)
async def feedback(
    request: Request,
    db: DbDep,
    serving: ServingDep,
    settings: SettingsDep,
    caller: FeedbackOrReviewCaller,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> JSON:
    """Rate a prediction (1-5); correct its label or give the preferred output; replays are safe."""
    body = await parse_body(request, FeedbackRequest)
    needed = Scope.REVIEW if body.source == "review" else Scope.FEEDBACK
    if needed == Scope.REVIEW and Scope.REVIEW not in caller.scopes:
        # Open mode lets anyone give feedback but not a reviewer's labels: those still need a
        # key with the review scope, as the queue they come from does (401/403 otherwise).
        caller = await admit(request.app.state, request.headers.get("authorization"), needed)
    if needed not in caller.scopes:
        raise HTTPException(
            status_code=403,
            detail=f"source {body.source} needs the {needed} scope",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )
    await serving.predlog.flush_if_pending(body.prediction_id)
    submit = partial(
        submit_feedback,
        db,
        prediction_id=body.prediction_id,
        rating=body.rating,
        label=body.label,
        preferred_output=body.preferred_output,
        comment=body.comment,
        idempotency_key=idempotency_key,
        allow_new_labels=settings.retrain.allow_new_labels,
        key_name=caller.name,
        source=body.source,
    )
    try:
        receipt = await after_other_flush(
            submit, body.prediction_id, flush_seconds=settings.api.log_flush_seconds
        )
    except PredictionNotFound:
        raise HTTPException(status_code=404, detail="unknown prediction_id") from None
    except (InvalidLabel, WrongFeedbackKind, IdempotencyConflict) as exc:
        raise unprocessable(str(exc)) from None
    if not receipt.replayed:
        metrics.FEEDBACK.labels(model_version=receipt.model_version).inc()
        metrics.FEEDBACK_RATING.labels(model_version=receipt.model_version).observe(body.rating)
        serving.canary.look_soon()
    return JSON({"id": receipt.id, "prediction_id": receipt.prediction_id}, status_code=201)
