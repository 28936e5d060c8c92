"""Streaming clients for the generation benchmark: SSE framing, one request's timings, a level.

Both servers are driven the same way: N prompts pulled by C concurrent clients, each reading its
stream chunk by chunk. A request's time to first token is from sending to the first chunk with
text; its inter-token gaps are between consecutive chunks with text (a chunk is one token on
both servers, except where a server holds text back, e.g. half a character, and sends two).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from benchmarks.loadgen import percentile
from tuneloop.client.sse import SseParser


@dataclass
class StreamResult:
    """One streamed request: when it was sent, when each chunk of text came, how it ended."""

    sent: float
    chunks: list[float] = field(default_factory=list)
    text: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return self.chunks[0] - self.sent if self.chunks else None

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.chunks, self.chunks[1:], strict=False)]


Stream = Callable[[httpx.AsyncClient, str], Awaitable[StreamResult]]
# (result, event name, data) -> None: one server's events folded into a request's result
Fold = Callable[[StreamResult, str, str], None]


def tuneloop_stream(base: str, max_new_tokens: int) -> Stream:
    """A client of `POST /v1/generate` with `stream: true` (events start, delta, finish)."""

    async def run(client: httpx.AsyncClient, prompt: str) -> StreamResult:
        body = {"inputs": prompt, "max_new_tokens": max_new_tokens, "stream": True}
        return await _streamed(client, f"{base}/v1/generate", body, _tuneloop_event)

    return run


async def _streamed(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], fold: Fold
) -> StreamResult:
    """POST `body` to `url` and fold each event of the answer's stream into the result."""
    result = StreamResult(sent=time.perf_counter())
    async with client.stream("POST", url, json=body) as answer:
        if answer.status_code != 200:
            result.error = f"HTTP {answer.status_code}: {(await answer.aread())[:200]!r}"
            return result
        parser = SseParser()
        async for chunk in answer.aiter_text():
            for event, data in parser.feed(chunk):
                fold(result, event, data)
    return _checked(result)


def _checked(result: StreamResult) -> StreamResult:
    """A stream that ended without a token is an error (a server that dropped the request)."""
    if result.error is None and not result.chunks:
        result.error = f"no tokens (finish_reason {result.finish_reason})"
    return result


def _tuneloop_event(result: StreamResult, event: str, text: str) -> None:
    data = orjson.loads(text)
    if event == "delta" and data.get("text"):
        result.chunks.append(time.perf_counter())
        result.text += data["text"]
    elif event == "finish":
        result.completion_tokens = int(data["completion_tokens"])
        result.finish_reason = data.get("finish_reason")
    elif event == "error":
        result.error = str(data)


def openai_stream(base: str, max_tokens: int) -> Stream:
    """A client of an OpenAI `/v1/chat/completions` stream, greedy (llama.cpp's server)."""

    async def run(client: httpx.AsyncClient, prompt: str) -> StreamResult:
        body = {
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stop": ["<|im_end|>"],
        }
        return await _streamed(client, f"{base}/v1/chat/completions", body, _openai_event)

    return run


def _openai_event(result: StreamResult, _event: str, text: str) -> None:
    if text.strip() != "[DONE]":
        openai_chunk(result, orjson.loads(text))


def openai_chunk(result: StreamResult, data: dict[str, Any]) -> None:
    """Fold one chat.completion.chunk into `result`: one chunk with text counts one token
    unless the server reports usage (then its completion_tokens count)."""
    for choice in data.get("choices") or []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            result.chunks.append(time.perf_counter())
            result.text += content
            result.completion_tokens += 1
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]
    usage = data.get("usage") or {}
    if usage.get("completion_tokens"):
        result.completion_tokens = int(usage["completion_tokens"])


async def run_level(
    stream: Stream, prompts: list[str], concurrency: int
) -> tuple[list[StreamResult], float]:
    """Every prompt once, `concurrency` requests in flight; the results in prompt order, wall s."""
    todo = list(enumerate(prompts))
    results: list[StreamResult | None] = [None] * len(prompts)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(600.0, connect=10.0)

    async def worker(client: httpx.AsyncClient) -> None:
        while todo:
            i, prompt = todo.pop(0)
            try:
                results[i] = await stream(client, prompt)
            except httpx.HTTPError as exc:
                results[i] = StreamResult(sent=time.perf_counter(), error=repr(exc))

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return [r for r in results if r is not None], wall


def summarize(results: list[StreamResult], wall: float) -> dict[str, Any]:
    """Output tokens/s over the wall, TTFT and inter-token p50/p99 in ms, errors."""
    ok = [r for r in results if r.error is None]
    ttfts = sorted(t for r in ok if (t := r.ttft) is not None)
    gaps = sorted(g for r in ok for g in r.gaps)
    tokens = sum(r.completion_tokens for r in ok)
    return {
        "requests": len(results),
        "errors": len(results) - len(ok),
        "first_error": next((r.error for r in results if r.error), None),
        "completion_tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else 0.0,
        "ttft_ms_p50": _ms(percentile(ttfts, 0.5)),
        "ttft_ms_p99": _ms(percentile(ttfts, 0.99)),
        "itl_ms_p50": _ms(percentile(gaps, 0.5)),
        "itl_ms_p99": _ms(percentile(gaps, 0.99)),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)
