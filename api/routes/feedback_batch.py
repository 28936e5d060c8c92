"""POST /v1/feedback/batch: many feedback items in one request, each committed or refused."""

from __future__ import annotations

import asyncio
from functools import partial

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import metrics
from api.answers import errors
from api.deps import DbDep, FeedbackCaller, ServingDep, SettingsDep
from api.errors import parse_body
from api.feedback_batch import MAX_ITEMS, BatchAnswer, FeedbackBatch, submit_batch, unknown_items
from api.ratelimit import RESPONSES

router = APIRouter(tags=["feedback"], responses=RESPONSES)
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": FeedbackBatch.model_json_schema()}},
    }
}


@router.post(
    "/v1/feedback/batch",
    response_model=BatchAnswer,
    openapi_extra=BODY,
    responses=errors(413, 422, 503),
    description=f"Up to {MAX_ITEMS} items `{{prediction_id, rating, label?, preferred_output?, "
    "comment?, idempotency_key?}}`; each is committed, replayed (committed before: same key, "
    "or the same fields from the same caller) or refused with its reason.",
)
async def feedback_batch(
    request: Request,
    db: DbDep,
    serving: ServingDep,
    settings: SettingsDep,
    caller: FeedbackCaller,
) -> BatchAnswer:
    """Rate many predictions at once; a 200 lists what became of each item."""
    body = await parse_body(request, FeedbackBatch)
    for item in body.items:  # predictions still in the log's buffer are written first
        if isinstance(pid := item.get("prediction_id"), str):
            await serving.predlog.flush_if_pending(pid)
    submit = partial(
        submit_batch,
        db,
        body.items,
        key_name=caller.name,
        allow_new_labels=settings.retrain.allow_new_labels,
    )
    answer, fresh = await run_in_threadpool(submit)
    if unknown_items(answer):  # ids another replica may still buffer: once more after its flush
        await asyncio.sleep(2 * settings.api.log_flush_seconds)
        answer, later = await run_in_threadpool(partial(submit, earlier=answer))
        fresh += later
    for receipt in fresh:
        metrics.FEEDBACK.labels(model_version=receipt.model_version).inc()
    if fresh:
        serving.canary.look_soon()
    return answer
