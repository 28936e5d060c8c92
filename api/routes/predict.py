"""POST /v1/predict."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from api.batcher import NotServing, QueueFull
from api.deps import ServingDep, SettingsDep
from api.errors import parse_body, unprocessable
from api.responses import JSON
from api.schemas import PredictRequest, PredictResponse

router = APIRouter(tags=["predict"])
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


def check_texts(texts: list[str], *, max_inputs: int, max_chars: int) -> None:
    """422 for an empty list, blank texts, too many texts or a text over the character limit."""
    if not texts:
        raise unprocessable("inputs must not be empty")
    if len(texts) > max_inputs:
        raise unprocessable(f"at most {max_inputs} inputs per request")
    for i, text in enumerate(texts):
        if not text.strip():
            raise unprocessable(f"inputs[{i}] is empty or whitespace")
        if len(text) > max_chars:
            raise unprocessable(f"inputs[{i}] is longer than {max_chars} characters")


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    openapi_extra=BODY,
    responses={503: {"description": "Queue full or no model loaded (Retry-After)."}},
)
async def predict(request: Request, serving: ServingDep, settings: SettingsDep) -> JSON:
    """Classify one text or a list of texts; each prediction gets an id for feedback."""
    body = await parse_body(request, PredictRequest)
    texts = body.texts()
    check_texts(texts, max_inputs=settings.api.max_inputs, max_chars=settings.api.max_chars)
    try:
        result = await serving.predict(texts)
    except (QueueFull, NotServing) as exc:
        reason = "queue full" if isinstance(exc, QueueFull) else "model not ready"
        raise HTTPException(
            status_code=503,
            detail=reason,
            headers={"Retry-After": str(settings.api.retry_after_seconds)},
        ) from None
    return JSON({"model_version": result.model_version, "predictions": result.predictions})
