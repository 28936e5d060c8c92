"""POST /v1/generate: prompts or a conversation in, generations out, whole or as SSE.

The helpers here are shared with the OpenAI-compatible chat route: both validate the same way,
start generations the same way and notice a client that went away the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from api.answers import error, errors
from api.auth import Caller
from api.batcher import NotServing, QueueFull
from api.deps import PredictCaller, Predicting, get_limiter, get_serving, get_settings
from api.errors import parse_body, unprocessable
from api.generation import CANCELLED, Handle
from api.genschemas import GenerateRequest, GenerateResponse
from api.ratelimit import RESPONSES
from api.responses import JSON
from api.schemas import is_blank
from api.serving import Serving, WrongTask
from core.runtime.engine import Sampling
from core.runtime.generator import Message
from core.settings import Settings

router = APIRouter(tags=["generate"], dependencies=[Predicting], responses=RESPONSES)
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": GenerateRequest.model_json_schema()}},
    }
}
# One Server-Sent Event (an event stream's `schema` describes each event before OpenAPI 3.2,
# which FastAPI's 3.1 is): `start`, `delta`, `finish` or `error` with JSON data, or OpenAI's
# unnamed chunks and the closing `[DONE]`.
SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}
# The answers of both generation routes: whole as JSON, or streamed (`stream: true`) as SSE.
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The generations; with `stream: true`, Server-Sent Events instead.",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    **errors(413, 422),
    409: error("The served model is a classifier."),
    503: error("Queue full or no model loaded (Retry-After)."),
}
MAX_STOP_CHARS = 128
DISCONNECT_POLL_SECONDS = 0.25


def sampling_of(
    settings: Settings,
    *,
    max_new_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: list[str],
    seed: int | None,
    default_temperature: float,
) -> Sampling:
    """Decoding settings checked against the api's limits: 422 above them, never clamped."""
    cap = settings.api.max_new_tokens
    if max_new_tokens is None:
        max_new_tokens = min(settings.api.default_new_tokens, cap)
    if not 1 <= max_new_tokens <= cap:
        raise unprocessable(f"max_new_tokens must be between 1 and {cap}")
    if len(stop) > settings.api.max_stop:
        raise unprocessable(f"at most {settings.api.max_stop} stop strings")
    if any(not s or len(s) > MAX_STOP_CHARS for s in stop):
        raise unprocessable(f"stop strings must have 1 to {MAX_STOP_CHARS} characters")
    return Sampling(
        max_new_tokens=max_new_tokens,
        temperature=default_temperature if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        stop=tuple(stop),
        seed=seed,
    )


def client_of(request: Request, caller: Caller) -> str | None:
    """Whom a running canary's split is sticky to: the key, or the client address in open mode."""
    return caller.name or (request.client.host if request.client else None)


def start(
    serving: Serving,
    *,
    sampling: Sampling,
    client: str | None = None,
    text: str | None = None,
    messages: list[Message] | None = None,
    raw: bool = False,
) -> Handle:
    """Choose `client`'s arm, template, tokenize, check the context, and start one generation
    (HTTP errors mapped)."""
    try:
        scheduler = serving.scheduler_for(client)
    except WrongTask as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except NotServing:
        raise _unavailable(serving, "model not ready") from None
    generator = scheduler.generator
    ids = generator.encode(text=text, messages=messages, raw=raw)
    limit = generator.context - sampling.max_new_tokens
    if len(ids) > limit:
        raise unprocessable(
            f"the prompt has {len(ids)} tokens; with max_new_tokens {sampling.max_new_tokens} "
            f"this model takes at most {max(limit, 0)} (its context is {generator.context})"
        )
    if not ids:
        raise unprocessable("the prompt is empty")
    # The log keeps the prompt as the user gave it: the text, or the turns (retraining templates
    # them again exactly as here); the drift descriptors read the turns' text.
    logged = text if text is not None else "\n".join(m.content for m in messages or [])
    meta: dict[str, Any] = (
        {"messages": [{"role": m.role, "content": m.content} for m in messages]}
        if messages
        else {"raw": raw}
    )
    try:
        return scheduler.submit(logged, ids, sampling, meta)
    except (QueueFull, NotServing) as exc:
        reason = "queue full" if isinstance(exc, QueueFull) else "model not ready"
        raise _unavailable(serving, reason) from None


def _unavailable(serving: Serving, reason: str) -> HTTPException:
    retry = str(serving.settings.retry_after_seconds)
    return HTTPException(status_code=503, detail=reason, headers={"Retry-After": retry})


async def wait_all(request: Request, serving: Serving, handles: list[Handle]) -> None:
    """Wait for every handle to finish; cancel them all if the client goes away meanwhile."""

    async def drain(handle: Handle) -> None:
        async for _ in handle.events():
            pass

    done = asyncio.ensure_future(asyncio.gather(*(drain(h) for h in handles)))
    try:
        while not done.done():
            await asyncio.wait({done}, timeout=DISCONNECT_POLL_SECONDS)
            if not done.done() and await request.is_disconnected():
                break
    finally:
        if not done.done():
            for handle in handles:
                serving.cancel(handle)
            done.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await done
    if any(h.finish_reason == CANCELLED for h in handles):
        raise _unavailable(serving, "generation interrupted")


def sse(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Event."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


async def guarded(
    serving: Serving, handle: Handle, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """A stream that cancels its generation when the client goes away mid-answer."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        if handle.finish_reason is None:
            serving.cancel(handle)


def event_stream(body: AsyncIterator[bytes], serving: Serving, handle: Handle) -> StreamingResponse:
    return StreamingResponse(
        guarded(serving, handle, body),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def generation_item(handle: Handle) -> dict[str, Any]:
    return {
        "id": handle.id,
        "text": handle.output,
        "finish_reason": handle.finish_reason,
        "prompt_tokens": handle.prompt_tokens,
        "completion_tokens": handle.completion_tokens,
        "truncated": False,
    }


async def _tuneloop_events(handle: Handle) -> AsyncIterator[bytes]:
    yield sse({"id": handle.id, "model_version": handle.version, "arm": handle.arm}, "start")
    async for event in handle.events():
        if event.delta:
            yield sse({"text": event.delta}, "delta")
        if event.finish_reason == CANCELLED:
            yield sse({"detail": "generation interrupted"}, "error")
        elif event.finish_reason is not None:
            item = generation_item(handle)
            yield sse({k: item[k] for k in item if k != "text"}, "finish")


@router.post(
    "/v1/generate",
    response_model=GenerateResponse,
    openapi_extra=BODY,
    responses=ANSWERS,
)
async def generate(request: Request, caller: PredictCaller) -> Any:
    """Generate from prompts or a conversation; `stream: true` answers Server-Sent Events."""
    serving, settings = get_serving(request), get_settings(request)
    body = await parse_body(request, GenerateRequest)
    prompts = body.prompts()
    if len(prompts) > settings.api.max_inputs:
        raise unprocessable(f"at most {settings.api.max_inputs} inputs per request")
    if body.stream and len(prompts) > 1:
        raise unprocessable("stream takes one prompt")
    if any(len(p) > settings.api.max_chars or is_blank(p) for p in prompts):
        raise unprocessable(f"inputs must be non-blank and at most {settings.api.max_chars} chars")
    for i, m in enumerate(body.messages or []):  # the limit chat's messages have too
        if len(m.content) > settings.api.max_chars:
            raise unprocessable(
                f"messages[{i}].content is longer than {settings.api.max_chars} chars"
            )
    sampling = sampling_of(
        settings,
        max_new_tokens=body.max_new_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop or [],
        seed=body.seed,
        default_temperature=0.0,
    )
    await get_limiter(request).texts(caller, max(len(prompts), 1))  # a conversation is 1
    client = client_of(request, caller)
    if body.messages is not None:
        messages = [Message(m.role, m.content) for m in body.messages]
        handles = [start(serving, sampling=sampling, client=client, messages=messages)]
    else:
        handles = []
        try:
            for prompt in prompts:
                handles.append(
                    start(serving, sampling=sampling, client=client, text=prompt, raw=body.raw)
                )
        except HTTPException:
            for handle in handles:
                serving.cancel(handle)
            raise
    if body.stream:
        return event_stream(_tuneloop_events(handles[0]), serving, handles[0])
    await wait_all(request, serving, handles)
    return JSON(
        {
            "model_version": handles[-1].version,
            "arm": handles[-1].arm,
            "generations": [generation_item(h) for h in handles],
        }
    )
