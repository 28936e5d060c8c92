"""POST /v1/chat/completions, OpenAI-compatible, so OpenAI clients and LangChain work unchanged.

`model` is echoed, never checked (the champion answers); OpenAI fields tuneloop does not
implement are ignored; `n` above 1 is a 422. The answer's `id` is the prediction id that
`POST /v1/feedback` names.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from api.deps import PredictCaller, Predicting, get_limiter, get_serving, get_settings
from api.errors import parse_body, unprocessable
from api.generation import CANCELLED, Handle
from api.genschemas import OPENAI_ROLES, ChatCompletion, ChatCompletionRequest
from api.ratelimit import RESPONSES
from api.responses import JSON
from api.routes.generate import (
    ANSWERS,
    client_of,
    event_stream,
    sampling_of,
    sse,
    start,
    wait_all,
)
from api.schemas import is_blank
from core.runtime.generator import Message

router = APIRouter(tags=["generate"], dependencies=[Predicting], responses=RESPONSES)
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema()}},
    }
}
# OpenAI's default: sampling at temperature 1 unless the client asks otherwise.
OPENAI_TEMPERATURE = 1.0


def _messages(body: ChatCompletionRequest, max_chars: int) -> list[Message]:
    messages = []
    for i, m in enumerate(body.messages):
        role = OPENAI_ROLES.get(m.role)
        if role is None:
            raise unprocessable(f"messages[{i}].role {m.role!r} is not one of {list(OPENAI_ROLES)}")
        content = m.text()
        if is_blank(content):
            raise unprocessable(f"messages[{i}].content is empty")
        if len(content) > max_chars:
            raise unprocessable(f"messages[{i}].content is longer than {max_chars} characters")
        messages.append(Message(role, content))  # type: ignore[arg-type]
    return messages


def _usage(handle: Handle) -> dict[str, int]:
    return {
        "prompt_tokens": handle.prompt_tokens,
        "completion_tokens": handle.completion_tokens,
        "total_tokens": handle.prompt_tokens + handle.completion_tokens,
    }


def _chunk(handle: Handle, model: str, created: int, **choice: Any) -> bytes:
    return sse(
        {
            "id": handle.id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": handle.version,
            "model_version": handle.version,
            "arm": handle.arm,
            "choices": [{"index": 0, "logprobs": None, **choice}],
        }
    )


async def _openai_events(
    handle: Handle, model: str, created: int, usage: bool
) -> AsyncIterator[bytes]:
    yield _chunk(
        handle, model, created, delta={"role": "assistant", "content": ""}, finish_reason=None
    )
    async for event in handle.events():
        if event.finish_reason == CANCELLED:
            yield sse({"error": {"message": "generation interrupted", "type": "server_error"}})
            return
        if event.delta:
            yield _chunk(handle, model, created, delta={"content": event.delta}, finish_reason=None)
        if event.finish_reason is not None:
            yield _chunk(handle, model, created, delta={}, finish_reason=event.finish_reason)
    if usage:
        yield sse(
            {
                "id": handle.id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(handle),
            }
        )
    yield b"data: [DONE]\n\n"


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    openapi_extra=BODY,
    responses=ANSWERS,
)
async def chat_completions(request: Request, caller: PredictCaller) -> Any:
    """OpenAI's chat completion: non-streamed, or streamed as chunks ending in `[DONE]`."""
    serving, settings = get_serving(request), get_settings(request)
    body = await parse_body(request, ChatCompletionRequest)
    if body.n not in (None, 1):
        raise unprocessable("n must be 1")
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise unprocessable("give max_tokens or max_completion_tokens, not both")
    sampling = sampling_of(
        settings,
        max_new_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stops(),
        seed=body.seed,
        default_temperature=OPENAI_TEMPERATURE,
    )
    messages = _messages(body, settings.api.max_chars)
    await get_limiter(request).texts(caller, 1)  # a conversation is one text
    handle = start(serving, sampling=sampling, client=client_of(request, caller), messages=messages)
    created = int(time.time())
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return event_stream(_openai_events(handle, body.model, created, usage), serving, handle)
    await wait_all(request, serving, [handle])
    return JSON(
        {
            "id": handle.id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "system_fingerprint": handle.version,
            "model_version": handle.version,
            "arm": handle.arm,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": handle.output},
                    "finish_reason": handle.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(handle),
        }
    )
