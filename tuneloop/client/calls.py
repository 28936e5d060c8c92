"""The client's one place of logic, free of I/O: how each call is asked, when it is sent again,
and how its answer is read. `Client` and `AsyncClient` only send what this builds.

A call is sent again on 429 and 503 (after the `Retry-After` the api gave, capped) and when no
connection could be made, but only when sending it twice cannot count it twice: reads,
predictions and generations, a retrain (the api answers the run in flight), and feedback that
carries an `Idempotency-Key` (every feedback call makes one unless it is given one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from tuneloop.client.errors import NoAnswer, Unavailable, error_of
from tuneloop.client.sse import SseParser
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
RETRIED_STATUSES = frozenset({429, 503})
# Nothing reached the api: sending again is safe for an idempotent call.
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
# An answer or a transport error, as a send ends.
Outcome = httpx.Response | httpx.TransportError


@dataclass(frozen=True)
class Call(Generic[T]):
    """One call of the api: the request, how its answer is read, and whether it may be resent."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True
    stream: bool = False
    answers: frozenset[int] = frozenset()  # statuses besides 2xx that are answers, not errors


@dataclass(frozen=True)
class Retries:
    """How often and how long to wait: `times` sends after the first, each after `Retry-After`
    (at most `max_wait` seconds) or else after `backoff` seconds doubled each time."""

    times: int = 3
    max_wait: float = 30.0
    backoff: float = 0.5

    @classmethod
    def of(cls, options: Options) -> Retries:
        """The retries a client's options ask for."""
        return cls(options.get("retries", 3), options.get("max_retry_wait", 30.0))

    def wait(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before resending after try `attempt` (0 for the first)."""
        asked = retry_after(response) if response is not None else None
        wait = self.backoff * 2**attempt if asked is None else asked
        return min(max(wait, 0.0), self.max_wait)


def retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds (it may be a number or an HTTP date), else None."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        return None


def exchange(call: Call[T], retries: Retries) -> Generator[float, Outcome, T]:
    """The tries of one call: yields the seconds to wait before each send and is sent what the
    send gave; returns the answer read, or raises the api's error once it is not retried."""
    attempt, wait = 0, 0.0
    while True:
        outcome = yield wait
        again = call.idempotent and attempt < retries.times
        if isinstance(outcome, httpx.TransportError):
            if not (again and isinstance(outcome, CONNECT_ERRORS)):
                raise NoAnswer(None, f"{type(outcome).__name__}: {outcome}") from outcome
            wait = retries.wait(attempt)
        elif outcome.status_code in RETRIED_STATUSES and again:
            wait = retries.wait(attempt, outcome)
        else:
            return answer(call, outcome)
        attempt += 1


def answer(call: Call[T], response: httpx.Response) -> T:
    """The answer read, or the error the response stands for."""
    if response.is_success or response.status_code in call.answers:
        return call.read(response)
    raise error_of(response, retry_after=retry_after(response))


def http_options(base_url: str, key: str | None, options: Options) -> dict[str, Any]:
    """What both clients give their httpx client: the base URL, the key, the timeouts."""
    timeout = options.get("timeout", 60.0)
    headers = {"User-Agent": "tuneloop-client"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return {
        "base_url": base_url,
        "headers": headers,
        "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
    }


def _adapted(kind: Any) -> Callable[[httpx.Response], Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return lambda response: adapter.validate_json(response.content)


def predict(texts: str | Sequence[str]) -> Call[list[Prediction]]:
    def read(response: httpx.Response) -> list[Prediction]:
        body = response.json()
        version, arm = body["model_version"], body.get("arm", "champion")
        return [Prediction(model_version=version, arm=arm, **p) for p in body["predictions"]]

    inputs = [texts] if isinstance(texts, str) else list(texts)
    return Call("POST", "/v1/predict", read, json={"inputs": inputs})


def generate(
    prompt: str | None,
    messages: Sequence[Message] | None,
    decoding: Decoding,
    *,
    stream: bool = False,
) -> Call[Any]:
    """`POST /v1/generate` for one prompt or one conversation; read as a `Generation`, or as
    the open response when streamed (read it with `GenerationStream`)."""
    if (prompt is None) == (messages is None):
        raise TypeError("give a prompt or messages, not both")
    body: dict[str, Any] = dict(decoding)
    if "stop" in body:
        body["stop"] = list(body["stop"])
    if prompt is not None:
        body["inputs"] = prompt
    else:
        body["messages"] = [dict(m) for m in messages or ()]
    if stream:
        return Call("POST", "/v1/generate", _opened, json={**body, "stream": True}, stream=True)
    return Call("POST", "/v1/generate", _generation, json=body)


def _opened(response: httpx.Response) -> httpx.Response:
    return response


def _generation(response: httpx.Response) -> Generation:
    body = response.json()
    arm = body.get("arm", "champion")
    return Generation(model_version=body["model_version"], arm=arm, **body["generations"][0])


class GenerationStream:
    """Folds `/v1/generate`'s events into the text deltas and, last, the whole `Generation`."""

    def __init__(self) -> None:
        self._parser = SseParser()
        self._start: dict[str, Any] = {}
        self._text: list[str] = []
        self.result: Generation | None = None

    def feed(self, chunk: str) -> list[str | Generation]:
        """What `chunk` of the stream completed: deltas, then the result on its finish event."""
        out: list[str | Generation] = []
        for event, data in self._parser.feed(chunk):
            body = json.loads(data)
            if event == "start":
                self._start = body
            elif event == "delta":
                self._text.append(body["text"])
                out.append(body["text"])
            elif event == "finish":
                text = "".join(self._text)
                self.result = Generation(**{**body, **self._start, "text": text})
                out.append(self.result)
            elif event == "error":
                raise Unavailable(503, body.get("detail", body))
        return out

    def end(self) -> None:
        """Raise when the stream closed before its finish event."""
        if self.result is None:
            raise NoAnswer(None, "the stream ended before the generation finished")


def feedback(prediction_id: str, rating: int, given: FeedbackFields) -> Call[FeedbackReceipt]:
    """`POST /v1/feedback` with an `Idempotency-Key` (a fresh one unless given), so a resent
    feedback is committed once and answered with the same id."""
    fields = {k: v for k, v in given.items() if k != "idempotency_key" and v is not None}
    body = {"prediction_id": prediction_id, "rating": rating, **fields}
    key = given.get("idempotency_key") or uuid.uuid4().hex
    read = _adapted(FeedbackReceipt)
    return Call("POST", "/v1/feedback", read, json=body, headers={"Idempotency-Key": key})


def feedback_batch(items: Sequence[dict[str, Any]]) -> Call[BatchReceipt]:
    """`POST /v1/feedback/batch`; safe to resend: the api keys each item (its own key, else one
    derived from its fields), so a replayed item is committed once."""
    return Call("POST", "/v1/feedback/batch", _adapted(BatchReceipt), json={"items": list(items)})


def retrain() -> Call[RunQueued]:
    def read(response: httpx.Response) -> RunQueued:
        return RunQueued(run_id=response.json()["run_id"], created=response.status_code == 202)

    return Call("POST", "/v1/retrain", read, answers=frozenset({409}))


def run(run_id: str) -> Call[Run]:
    return Call("GET", f"/v1/retrain/{_segment(run_id)}", _adapted(Run))


def models() -> Call[Models]:
    return Call("GET", "/v1/models", _adapted(Models))


def checks(limit: int) -> Call[list[Check]]:
    return Call("GET", "/v1/monitor/checks", _adapted(list[Check]), params={"limit": limit})


def still_running(run: Run, timeout: float) -> TimeoutError:
    """What `wait` raises when a run outlasts its timeout."""
    return TimeoutError(
        f"run {run.run_id} is still {run.state} ({(run.progress or 0):.0%}) after {timeout:g} s"
    )


def _segment(value: str) -> str:
    """A path segment, so an id cannot reach another route."""
    return quote(value, safe="")
