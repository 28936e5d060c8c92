"""POST /v1/predict.

It is the hottest route, so besides the FastAPI route (OpenAPI, docs) it has a bare ASGI twin,
`predict_asgi`, that the api's body-limit middleware calls for `POST /v1/predict`: the same
validation, the same call and the same answers, without FastAPI's routing, dependency solving and
exception middleware, which cost more CPU per request than everything else the api does for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from api.answers import error, errors
from api.auth import Caller
from api.batcher import NotServing, QueueFull
from api.deps import PredictCaller, Predicting
from api.errors import clean_errors, unprocessable
from api.ratelimit import RESPONSES, RateLimiter, admit
from api.responses import JSON
from api.schemas import PredictRequest, PredictResponse, is_blank
from api.serving import Serving, WrongTask
from core.keys import Scope as KeyScope
from core.settings import Settings

PATH = "/v1/predict"
T = TypeVar("T")

router = APIRouter(tags=["predict"], dependencies=[Predicting], responses=RESPONSES)
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
        if is_blank(text):
            raise unprocessable(f"inputs[{i}] is empty or only invisible characters")
        if len(text) > max_chars:
            raise unprocessable(f"inputs[{i}] is longer than {max_chars} characters")


async def classify(
    body: bytes, *, state: Any, caller: Caller, address: str | None = None
) -> dict[str, Any]:
    """Validate a predict body, charge its texts to the caller's limit, run it on an app (its
    `state`), and return the answer; HTTPException for 422, 429 and 503.

    A running canary's split is sticky per key, or per client `address` in open mode.
    """
    serving: Serving = state.serving
    settings: Settings = state.settings
    limiter: RateLimiter = state.limiter
    try:  # pydantic's own JSON parser: strict UTF-8, errors without the input echoed
        request = PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        raise unprocessable(clean_errors(exc.errors(include_input=False))) from None
    texts = request.texts()
    check_texts(texts, max_inputs=settings.api.max_inputs, max_chars=settings.api.max_chars)
    await limiter.texts(caller, len(texts))
    try:
        result = await serving.predict(texts, caller.name or address)
    except WrongTask as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except (QueueFull, NotServing) as exc:
        raise unavailable(exc, settings) from None
    return {
        "model_version": result.model_version,
        "arm": result.arm,
        "predictions": result.predictions,
    }


def unavailable(exc: QueueFull | NotServing, settings: Settings) -> HTTPException:
    """The 503 for a full or overloaded queue (Retry-After: when the excess wait has drained, at
    least the setting) or a model not loaded yet."""
    retry = settings.api.retry_after_seconds
    if isinstance(exc, QueueFull):
        retry = exc.retry_after(retry, settings.api.queue_deadline_seconds)
    detail = str(exc) if isinstance(exc, QueueFull) else "model not ready"
    return HTTPException(status_code=503, detail=detail, headers={"Retry-After": str(retry)})


@router.post(
    PATH,
    response_model=PredictResponse,
    openapi_extra=BODY,
    responses={
        **errors(413, 422),
        409: error("The served model is a generator."),
        503: error("Queue full or no model loaded (Retry-After)."),
    },
)
async def predict(request: Request, caller: PredictCaller) -> JSON:
    """Classify one text or a list of texts; each prediction gets an id for feedback."""
    # The app state, not `Depends`: FastAPI runs sync dependencies in its thread pool (two thread
    # hops per request), and `predict_asgi` has no dependency injection.
    address = request.client.host if request.client else None
    body = await request.body()
    return JSON(await classify(body, state=request.app.state, caller=caller, address=address))


ROUTE = router.routes[-1]  # what `predict_asgi` puts in the scope, for the metrics' route label


async def predict_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /v1/predict` as a bare ASGI app: the route above, minus FastAPI's per-request work."""
    scope["route"] = ROUTE
    request = Request(scope, receive)
    state = scope["app"].state
    try:
        try:  # overload first: a refusal costs no key lookup and no parsing
            state.serving.admit(1)
        except QueueFull as exc:
            raise unavailable(exc, state.settings) from None
        # the key and its request limit before the body is read, as the route's dependency
        caller = await admit(state, request.headers.get("authorization"), KeyScope.PREDICT)
        body = await request.body()
        address = scope["client"][0] if scope.get("client") else None
        work = classify(body, state=state, caller=caller, address=address)
        answer = JSON(await _unless_gone(receive, work))
    except HTTPException as exc:  # what FastAPI's handler answers
        answer = JSON({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    await answer(scope, receive, send)


async def _unless_gone(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    """Await `work`, cancelled if the client disconnects first, so its texts leave the queue
    before their forward pass; ClientDisconnect then (counted 499, nobody to answer)."""
    current = asyncio.current_task()
    assert current is not None

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not watcher.done() or watcher.cancelled():
            raise  # cancelled from outside (shutdown), not by the client's going
        current.uncancel()
        raise ClientDisconnect from None
    finally:
        watcher.cancel()
