"""uvicorn's httptools protocol with the limits it lacks: bounded request heads, slow clients cut.

uvicorn reads a request head of any size and waits forever for one that never ends: a 20 MiB
header is served, 40 connections each sending 5 MiB of unfinished header hold ~200 MiB, and a
connection that sends half a request (or nothing) stays open until the client gives up. Here:

- a head (request line and headers) over `max_head_bytes` is answered 431 and the connection
  closed, counted on the raw bytes while the head is unfinished, so an endless one is cut too;
- a head must arrive whole within `head_timeout_seconds` of its first byte, and a new connection
  must begin one within it, else 408 (or, having sent nothing, a plain close);
- a body must keep coming: a gap over `body_timeout_seconds` between its chunks is a 408.

Under overload it also refuses before the app: on a complete head, `POST /v1/predict` is answered
503 with Retry-After when the batcher would refuse it anyway (the admission the app's lifespan
shares in its state under `ADMIT`), and a connection opened while the worker holds
`max_connections` is refused the same way. A refusal there costs no task, no scope and no
routing, so it does not wait behind the requests the loop is serving. The answer waits for the
request's body only as long as the bytes already received last: when the body came with the head
(or there is none) it is discarded, the answer written, and the connection kept for the client's
retry (no new connect and protocol set-up per attempt), unless the client asked for a close or it
is the connection bound that refused; a body still to come closes the connection after the answer,
so an unread body is never waited for. Health, readiness and metrics answer regardless, so
Prometheus and the orchestrator still see the state.

The limits come from the settings of the process (`TUNELOOP_API_*`), read once: uvicorn builds
the protocol from a class, which every worker process imports by name.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import TimerHandle
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi.routing import APIRoute
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api import metrics
from api.batcher import QueueFull
from api.middleware import REQUEST_ID_HEADER, request_id_of
from api.routes import health
from api.routes.predict import PATH as PREDICT_PATH
from core.logs import REQUEST_ID
from core.settings import ApiSettings, get_settings

ADMIT = "tuneloop.admit"  # lifespan state: `Serving.admit`, QueueFull when predict would be refused
PREDICT_PATH_BYTES = PREDICT_PATH.encode()
OVERLOADED = "overloaded: the expected wait is past the deadline"  # fixed, so its answer is too
# every route of the health module: what Prometheus and the orchestrator read under overload
OPEN_UNDER_OVERLOAD = frozenset(
    route.path.encode() for route in health.router.routes if isinstance(route, APIRoute)
)
REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


@cache
def _limits() -> ApiSettings:
    return get_settings().api


class GuardedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that refuses over-long request heads, cuts slow clients and sheds
    overload before the app."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_body = False  # the head of the current request is complete
        self._head_bytes = 0  # bytes received for the current head (an upper bound)
        self._refused = False
        self._kept = False  # a refusal in the current `data_received` kept the connection
        # a shed request whose body is still being discarded: its answer and whether it may keep
        # the connection; never set between two calls of `data_received`
        self._shedding: tuple[int, str, int, bool] | None = None
        self._timer: TimerHandle | None = None
        self._received_at = 0.0  # when the bytes `data_received` handles now reached it
        bound = _limits().max_connections
        self._over_bound = bool(bound) and len(self.connections) > bound
        self._arm(_limits().head_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_body:
            self._arm(_limits().body_timeout_seconds)
        else:
            self._head_bytes += len(data)
            if self._timer is None:  # the first bytes after an idle keep-alive
                self._arm(_limits().head_timeout_seconds)
        self._kept = False
        self._received_at = time.perf_counter()  # a refusal's time starts with its bytes here
        super().data_received(data)
        if self._shedding is not None:  # its body has not all come: answer, close, read no more
            status, message, retry_after, _ = self._shedding
            self._shedding = None
            self._refuse(status, message, retry_after=retry_after)
            self._timed_refusal()
        elif self._kept and (self.cycle is None or self.cycle.response_complete):
            self._arm_keep_alive()  # nothing after the kept refusal: idle, as after an answer
        if not self._in_body and self._head_bytes > _limits().max_head_bytes:
            self._refuse(431, "request head too large")

    def on_headers_complete(self) -> None:
        if self._refused:  # a request pipelined behind a closing refusal is not served
            return
        # The count so far may include body bytes that came in the same chunk as the head, so the
        # complete head is measured by what it holds.
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > _limits().max_head_bytes:
            self._refuse(431, "request head too large")
            return
        if self._sheds():
            return
        self._in_body = True
        self._arm(_limits().body_timeout_seconds)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused and self._shedding is None:  # a shed request's body is dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        if self._shedding is not None:
            self._answer_shed()
            return
        self._disarm()  # the app has the whole request; the keep-alive timer takes over after
        self._in_body, self._head_bytes = False, 0
        super().on_message_complete()

    def _sheds(self) -> bool:
        """Refuse the request whose head just completed (503, close) if its connection came over
        the bound or predict's admission is closed; True when refused."""
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # a pipelined request: the app answers it in turn
        path = self.url.partition(b"?")[0]
        if path in OPEN_UNDER_OVERLOAD:
            return False
        limits = _limits()
        if self._over_bound:  # closed after its answer: it is the connection that is refused
            self._shed(path, "too many connections", limits.retry_after_seconds, keep=False)
            return True
        admit: Callable[[int], None] | None = self.app_state.get(ADMIT)
        if admit is None or path != PREDICT_PATH_BYTES or self.parser.get_method() != b"POST":
            return False
        try:
            admit(1)
        except QueueFull as exc:
            retry = exc.retry_after(limits.retry_after_seconds, limits.queue_deadline_seconds)
            self._shed(path, OVERLOADED if exc.wait else str(exc), retry)
            return True
        return False

    def _shed(self, path: bytes, message: str, retry_after: int, *, keep: bool = True) -> None:
        """Refuse the request with a 503 once its body, if any, has been read (`on_message_complete`
        answers it); `keep` when the connection may stay open after the answer."""
        _refusals(path == PREDICT_PATH_BYTES, self.parser.get_method()).inc()
        # The parser's rule (HTTP/1.1 unless `Connection: close`, 1.0 only with keep-alive), but
        # uvicorn closes every HTTP/1.0 connection after its answer, and so does this.
        keep = keep and self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
        self._shedding = (503, message, retry_after, keep)

    def _answer_shed(self) -> None:
        """Answer the shed request whose whole body has now been read, keeping the connection when
        it may: the next request, pipelined or not, is parsed as if the app had answered."""
        assert self._shedding is not None
        status, message, retry_after, keep = self._shedding
        self._shedding = None
        if not keep:
            self._refuse(status, message, retry_after=retry_after)
        else:
            self._write(status, _answer(status, message, retry_after, close=False))
            self._disarm()
            self._in_body, self._head_bytes, self._kept = False, 0, True
        self._timed_refusal()

    def _timed_refusal(self) -> None:
        """Observe the api's own time for the refusal just written (within `data_received`)."""
        metrics.PROTOCOL_REFUSAL_SECONDS.observe(time.perf_counter() - self._received_at)

    def _arm_keep_alive(self) -> None:
        """uvicorn's idle keep-alive timer, as it arms it after an answer of the app's."""
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._in_body or self._head_bytes:
            self._refuse(408, "request not received in time")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing sent: close as an idle keep-alive would

    def _refuse(self, status: int, message: str, *, retry_after: int = 0) -> None:
        """Answer `status` with a one-line JSON detail and close, unless the app already answers."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete and self._in_body:
            self.cycle.disconnected = True  # the app's request ends; it gets a disconnect
            self.cycle.message_event.set()
            if self.cycle.response_started:
                self.transport.close()
                return
        self._write(status, _answer(status, message, retry_after, close=True))
        self.transport.close()

    def _write(self, status: int, answer: tuple[bytes, bytes]) -> None:
        """Write a pre-built answer with the request's id (the client's, by the app's rule, or a
        new one), and log it as uvicorn logs an answer of the app's: its access line, when on,
        under that id, so a refused request is traced like any other."""
        request_id = request_id_of(self.headers)
        head, body = answer
        self.transport.write(
            b"%s%s: %s\r\n\r\n%s" % (head, REQUEST_ID_HEADER, request_id.encode(), body)
        )
        if self.access_log:
            token = REQUEST_ID.set(request_id)
            try:
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
                method = (self.scope or {}).get("method") or self.parser.get_method().decode()
                path = getattr(self, "url", b"").decode("ascii", "replace") or "-"
                line = '%s - "%s %s HTTP/%s" %d'
                self.access_logger.info(
                    line, client, method, path, self.parser.get_http_version(), status
                )
            finally:
                REQUEST_ID.reset(token)


@cache
def _answer(status: int, message: str, retry_after: int, *, close: bool) -> tuple[bytes, bytes]:
    """The response's head (but the request id and its end) and body, built once per distinct
    answer: a refusal under load costs a write."""
    body = b'{"detail":"' + message.encode() + b'"}'
    retry = b"retry-after: %d\r\n" % retry_after if retry_after else b""
    connection = b"connection: close\r\n" if close else b""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s%s" % (
        status,
        REASONS[status],
        len(body),
        retry,
        connection,
    )
    return head, body


@cache
def _refusals(predict: bool, method: bytes) -> Any:
    """The request counter's child for a refusal in the protocol; the app never saw the request,
    so only predict has its route's label and the rest count as unmatched."""
    route = PREDICT_PATH if predict else "unmatched"
    return metrics.REQUESTS.labels(
        route=route, method=method.decode("ascii", "replace"), status="503"
    )
