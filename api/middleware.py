"""Pure ASGI middleware: request ids, the request body limit (413) and HTTP metrics.

A client that goes away before its body is read is recorded as status 499 (nginx's "client
closed request") and answered nothing: it is no server error, so it must not feed the 5xx alert.

Inside the body limit, `POST /v1/predict` goes straight to the route's bare ASGI twin
(`api.routes.predict.predict_asgi`); every other request goes on through FastAPI.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from api.routes.predict import PATH as PREDICT_PATH
from api.routes.predict import predict_asgi
from core.logs import REQUEST_ID

REQUEST_ID_HEADER = b"x-request-id"
# What a proxy or client may name a request by: a token that cannot break a log line or a header.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestId:
    """Give every request an id: the client's `X-Request-ID` if it is a sane token, else a new one.

    The answer carries it in `X-Request-ID`, and `core.logs.REQUEST_ID` holds it for the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        # Not reset on the way out: the server runs each request in a task of its own, whose
        # context ends with it, and its error log for a failed request is written after we return.
        REQUEST_ID.set(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id_of(headers: list[tuple[bytes, bytes]] | None) -> str:
    """The request's id: the client's `X-Request-ID` if it is a sane token, else a new one."""
    return _given_id(headers or []) or uuid.uuid4().hex


def _given_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode() if SANE_REQUEST_ID.fullmatch(value) else None
    return None


class BodyTooLarge(Exception):
    """The request body passed the limit while it was read."""


class BodyLimit:
    """Answer 413 when Content-Length or the bytes actually received pass `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        fast = scope["path"] == PREDICT_PATH and scope["method"] == "POST" and "app" in scope
        try:
            await (predict_asgi if fast else self.app)(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps({"detail": f"request body larger than {limit} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


CLIENT_CLOSED = 499


class HttpMetrics:
    """Count requests and time them by route template (low cardinality), method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labels() once per key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except ClientDisconnect:  # nobody to answer; no traceback either
            status = CLIENT_CLOSED
        finally:
            elapsed = time.perf_counter() - started
            key = (_route(scope), scope["method"], status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    metrics.REQUESTS.labels(route=key[0], method=key[1], status=str(status)),
                    metrics.REQUEST_SECONDS.labels(route=key[0]),
                )
            series[0].inc()
            series[1].observe(elapsed)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
