"""Per-key rate limits: a token bucket of requests and one of texts per key, else 429.

A key has no limit unless `tuneloop keys create|limit` gave it one; the admin token and open mode
have none. Every predict, generation and feedback request takes a token from its key's request
bucket before its body is read; predict inputs and generation prompts then take one token each
from the texts bucket (a conversation is one text). Admin routes are not limited: an operator's
rollback must not wait behind a limit.

Rule for the burst (a bucket's size): one second's worth of its rate, and at least one request or
the most texts one request may carry (`TUNELOOP_API_MAX_INPUTS`), so that a full bucket always
passes the largest valid request; the rate alone then bounds a key's long-run average.

The buckets live in Redis when the broker is Redis (every replica shares one budget per key),
else in the process (`api.redis_buckets`, `LocalBuckets`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import HTTPException

from api import auth, metrics
from api.answers import error
from api.auth import Caller, authorize
from core.keys import Scope

# The answers of a limited route: those of `api.auth`, and the 429.
RESPONSES: dict[int | str, dict[str, Any]] = {
    **auth.RESPONSES,
    429: error("The API key is over its rate limit (`Retry-After`, in seconds)."),
}
LIMITED_SCOPES = frozenset({Scope.PREDICT, Scope.FEEDBACK})


@dataclass(frozen=True)
class Bucket:
    """A token bucket's state: the tokens it held at time `at` (seconds)."""

    tokens: float
    at: float


def take(
    bucket: Bucket | None, *, now: float, rate: float, burst: float, cost: float
) -> tuple[Bucket, float]:
    """Refill `bucket` (None: a new, full one) to `now` and take `cost` tokens from it.

    Returns the new state and 0 when the cost was taken, else the seconds until it could be. A
    cost above the burst takes a full bucket (it could never pass otherwise). The Lua script in
    `api.redis_buckets` is this function, in Redis.
    """
    cost = min(cost, burst)
    tokens = burst
    if bucket is not None:  # a clock that stepped back refills nothing
        tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
    if tokens >= cost:
        return Bucket(tokens - cost, now), 0.0
    return Bucket(tokens, now), (cost - tokens) / rate


def burst_of(rate: float, floor: float) -> float:
    """The burst rule (module docstring): a second's worth, at least `floor`."""
    return max(rate, floor)


class Buckets(Protocol):
    """Where the buckets are kept: in this process, or in Redis for every replica."""

    async def take(self, name: str, *, rate: float, burst: float, cost: float) -> float:
        """Take `cost` from the bucket `name`: 0 when taken, else the seconds to wait."""
        ...

    async def close(self) -> None:
        """Let go of any connection."""
        ...


class LocalBuckets:
    """Buckets in this process, on a monotonic clock (one bucket per key and kind)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}  # as many as keys: the key table bounds it

    async def take(self, name: str, *, rate: float, burst: float, cost: float) -> float:
        """Take `cost` from the bucket `name`: 0 when taken, else the seconds to wait."""
        state, wait = take(
            self._buckets.get(name), now=self._clock(), rate=rate, burst=burst, cost=cost
        )
        self._buckets[name] = state
        return wait

    async def close(self) -> None:
        """Nothing to let go of."""


class RateLimiter:
    """Charges a caller's requests and texts to its key's buckets; 429 when one is empty."""

    def __init__(self, buckets: Buckets, *, max_inputs: int) -> None:
        self.buckets = buckets
        self._max_inputs = max_inputs

    async def requests(self, caller: Caller) -> None:
        """Charge one request, or raise the 429."""
        if caller.limits.requests is not None:
            await self._charge(caller, "requests", caller.limits.requests, 1, floor=1)

    async def texts(self, caller: Caller, count: int) -> None:
        """Charge `count` texts, or raise the 429."""
        if caller.limits.texts is not None:
            await self._charge(caller, "texts", caller.limits.texts, count, self._max_inputs)

    async def _charge(self, caller: Caller, kind: str, rate: float, cost: int, floor: int) -> None:
        name = f"{caller.name}:{kind}"
        wait = await self.buckets.take(name, rate=rate, burst=burst_of(rate, floor), cost=cost)
        if wait <= 0:
            return
        metrics.RATE_LIMITED.labels(key=caller.name, limit=kind).inc()
        raise HTTPException(
            status_code=429,
            detail=f"API key {caller.name} is over its limit of {rate:g} {kind}/s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


async def admit(state: Any, authorization: str | None, scope: Scope) -> Caller:
    """The caller allowed `scope` on an app (`api.auth.authorize`), its request charged to its
    key's limit where the scope is limited; 401, 403 or 429 otherwise."""
    caller = authorize(state, authorization, scope)
    if scope in LIMITED_SCOPES:
        limiter: RateLimiter = state.limiter
        await limiter.requests(caller)
    return caller
