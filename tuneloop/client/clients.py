"""`Client` and `AsyncClient`: the same methods, one blocking and one awaited. Each only sends
what `calls` builds and sleeps for as long as `calls.exchange` says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar, Unpack

import httpx

from tuneloop.client import calls
from tuneloop.client.types import (
    BatchReceipt,
    Check,
    Decoding,
    FeedbackFields,
    FeedbackReceipt,
    Generation,
    Message,
    Models,
    Options,
    Prediction,
    Run,
    RunQueued,
)

T = TypeVar("T")
LOCAL = "http://127.0.0.1:8000"
# Where the clients sleep between tries and polls (tests replace them).
sleep = time.sleep
async_sleep = asyncio.sleep


class Client:
    """A blocking client of a tuneloop api.

    Args:
        base_url: the api, e.g. `http://127.0.0.1:8000`.
        key: an API key (`tuneloop keys create`); none is needed in open mode for predict,
            generation and feedback.
        transport: an httpx transport in place of the network (tests, proxies).
        options: `timeout`, `retries`, `max_retry_wait` (see `Options`).
    """

    def __init__(
        self,
        base_url: str = LOCAL,
        key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        self._retries = calls.Retries.of(options)
        self._http = httpx.Client(**calls.http_options(base_url, key, options), transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _call(self, call: calls.Call[T]) -> T:
        steps = calls.exchange(call, self._retries)
        wait = next(steps)
        request = self._http.build_request(
            call.method, call.path, json=call.json, params=call.params, headers=call.headers
        )
        while True:
            if wait:
                sleep(wait)
            outcome: calls.Outcome
            try:
                outcome = self._http.send(request, stream=call.stream)
                if not outcome.is_success:
                    outcome.read()
            except httpx.TransportError as exc:
                outcome = exc
            try:
                wait = steps.send(outcome)
            except StopIteration as done:
                return done.value

    def predict(self, texts: str | Sequence[str]) -> list[Prediction]:
        """Classify one text or several; each prediction's id takes feedback."""
        return self._call(calls.predict(texts))

    def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        **decoding: Unpack[Decoding],
    ) -> Generation:
        """Generate from a prompt or a conversation (`max_new_tokens`, `temperature`, …)."""
        return self._call(calls.generate(prompt, messages, decoding))

    def stream_generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        **decoding: Unpack[Decoding],
    ) -> Iterator[str | Generation]:
        """Generate as a stream: the text deltas as they come, then the whole `Generation`."""
        response: httpx.Response = self._call(
            calls.generate(prompt, messages, decoding, stream=True)
        )
        stream = calls.GenerationStream()
        try:
            for chunk in response.iter_text():
                yield from stream.feed(chunk)
            stream.end()
        finally:
            response.close()

    def feedback(
        self,
        prediction_id: str,
        rating: int,
        **given: Unpack[FeedbackFields],
    ) -> FeedbackReceipt:
        """Rate a prediction 1-5; correct its label or give the preferred output."""
        return self._call(calls.feedback(prediction_id, rating, given))

    def feedback_batch(self, items: Sequence[dict[str, Any]]) -> BatchReceipt:
        """Many feedback items in one call (fields as `feedback`'s); each committed or refused."""
        return self._call(calls.feedback_batch(items))

    def retrain(self) -> RunQueued:
        """Queue a retrain run, or get the one in flight (admin)."""
        return self._call(calls.retrain())

    def run(self, run_id: str) -> Run:
        """One retrain run (admin)."""
        return self._call(calls.run(run_id))

    def wait(self, run_id: str, timeout: float = 3600.0, *, poll: float = 2.0) -> Run:
        """The run once it has ended; TimeoutError when it has not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (run := self.run(run_id)).final:
            if time.monotonic() >= deadline:
                raise calls.still_running(run, timeout)
            sleep(poll)
        return run

    def models(self) -> Models:
        """The registered versions and the champion."""
        return self._call(calls.models())

    def checks(self, limit: int = 50) -> list[Check]:
        """Recent monitor checks, newest first (admin)."""
        return self._call(calls.checks(limit))


class AsyncClient:
    """`Client`'s methods, awaited (the same arguments; `transport` is an async one)."""

    def __init__(
        self,
        base_url: str = LOCAL,
        key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        self._retries = calls.Retries.of(options)
        http = calls.http_options(base_url, key, options)
        self._http = httpx.AsyncClient(**http, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _call(self, call: calls.Call[T]) -> T:
        steps = calls.exchange(call, self._retries)
        wait = next(steps)
        request = self._http.build_request(
            call.method, call.path, json=call.json, params=call.params, headers=call.headers
        )
        while True:
            if wait:
                await async_sleep(wait)
            outcome: calls.Outcome
            try:
                outcome = await self._http.send(request, stream=call.stream)
                if not outcome.is_success:
                    await outcome.aread()
            except httpx.TransportError as exc:
                outcome = exc
            try:
                wait = steps.send(outcome)
            except StopIteration as done:
                return done.value

    async def predict(self, texts: str | Sequence[str]) -> list[Prediction]:
        """Classify one text or several; each prediction's id takes feedback."""
        return await self._call(calls.predict(texts))

    async def generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        **decoding: Unpack[Decoding],
    ) -> Generation:
        """Generate from a prompt or a conversation (`max_new_tokens`, `temperature`, …)."""
        return await self._call(calls.generate(prompt, messages, decoding))

    async def stream_generate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message] | None = None,
        **decoding: Unpack[Decoding],
    ) -> AsyncIterator[str | Generation]:
        """Generate as a stream: the text deltas as they come, then the whole `Generation`."""
        response: httpx.Response = await self._call(
            calls.generate(prompt, messages, decoding, stream=True)
        )
        stream = calls.GenerationStream()
        try:
            async for chunk in response.aiter_text():
                for item in stream.feed(chunk):
                    yield item
            stream.end()
        finally:
            await response.aclose()

    async def feedback(
        self,
        prediction_id: str,
        rating: int,
        **given: Unpack[FeedbackFields],
    ) -> FeedbackReceipt:
        """Rate a prediction 1-5; correct its label or give the preferred output."""
        return await self._call(calls.feedback(prediction_id, rating, given))

    async def feedback_batch(self, items: Sequence[dict[str, Any]]) -> BatchReceipt:
        """Many feedback items in one call (fields as `feedback`'s); each committed or refused."""
        return await self._call(calls.feedback_batch(items))

    async def retrain(self) -> RunQueued:
        """Queue a retrain run, or get the one in flight (admin)."""
        return await self._call(calls.retrain())

    async def run(self, run_id: str) -> Run:
        """One retrain run (admin)."""
        return await self._call(calls.run(run_id))

    async def wait(self, run_id: str, timeout: float = 3600.0, *, poll: float = 2.0) -> Run:
        """The run once it has ended; TimeoutError when it has not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (run := await self.run(run_id)).final:
            if time.monotonic() >= deadline:
                raise calls.still_running(run, timeout)
            await async_sleep(poll)
        return run

    async def models(self) -> Models:
        """The registered versions and the champion."""
        return await self._call(calls.models())

    async def checks(self, limit: int = 50) -> list[Check]:
        """Recent monitor checks, newest first (admin)."""
        return await self._call(calls.checks(limit))
