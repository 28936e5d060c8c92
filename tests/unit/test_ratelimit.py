"""Rate-limit buckets: the math on a fake clock, the in-process and Redis backends, the 429."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import HTTPException
from prometheus_client import REGISTRY

from api.auth import Caller
from api.ratelimit import Bucket, LocalBuckets, RateLimiter, burst_of, take
from api.redis_buckets import RedisBuckets, make_buckets
from core.keys import Limits
from tests.conftest import REDIS_URL, require_service


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_passes_its_burst_then_refills_at_the_rate() -> None:
    bucket, waits = None, []
    for _ in range(4):  # rate 2/s, burst 3: three pass at once, the fourth waits half a second
        bucket, wait = take(bucket, now=10.0, rate=2.0, burst=3.0, cost=1)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]
    assert bucket == Bucket(tokens=0.0, at=10.0)
    bucket, wait = take(bucket, now=10.25, rate=2.0, burst=3.0, cost=1)
    assert wait == pytest.approx(0.25) and bucket.tokens == pytest.approx(0.5)
    bucket, wait = take(bucket, now=10.5, rate=2.0, burst=3.0, cost=1)
    assert wait == 0.0 and bucket.tokens == pytest.approx(0.0)
    bucket, wait = take(bucket, now=100.0, rate=2.0, burst=3.0, cost=0)
    assert bucket.tokens == 3.0  # idle time refills only up to the burst


def test_a_cost_above_the_burst_takes_a_full_bucket_and_a_clock_stepping_back_refills_none() -> (
    None
):
    bucket, wait = take(None, now=0.0, rate=1.0, burst=5.0, cost=60)
    assert (bucket.tokens, wait) == (0.0, 0.0)
    bucket, wait = take(bucket, now=-3.0, rate=1.0, burst=5.0, cost=60)
    assert (bucket.tokens, wait) == (0.0, 5.0)


def test_the_burst_is_a_seconds_worth_and_at_least_the_floor() -> None:
    assert burst_of(20.0, 1) == 20.0
    assert burst_of(0.5, 1) == 1
    assert burst_of(500.0, 64) == 500.0 and burst_of(10.0, 64) == 64


async def test_local_buckets_are_one_per_name_on_the_clock() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock)
    assert await buckets.take("a:requests", rate=1.0, burst=1.0, cost=1) == 0.0
    assert await buckets.take("a:requests", rate=1.0, burst=1.0, cost=1) == 1.0
    assert await buckets.take("b:requests", rate=1.0, burst=1.0, cost=1) == 0.0
    clock.now += 0.75
    assert await buckets.take("a:requests", rate=1.0, burst=1.0, cost=1) == pytest.approx(0.25)
    clock.now += 0.25
    assert await buckets.take("a:requests", rate=1.0, burst=1.0, cost=1) == 0.0


def rejected(key: str, limit: str) -> float:
    labels = {"key": key, "limit": limit}
    return REGISTRY.get_sample_value("tuneloop_api_rate_limited_total", labels) or 0.0


async def test_the_limiter_answers_429_with_a_whole_retry_after_and_counts_it() -> None:
    clock = Clock()
    limiter = RateLimiter(LocalBuckets(clock), max_inputs=8)
    name = f"k{uuid.uuid4().hex[:8]}"
    caller = Caller(name, frozenset({"predict"}), Limits(requests=0.4, texts=2.0))
    await limiter.requests(caller)  # burst: at least one request
    with pytest.raises(HTTPException) as refused:
        await limiter.requests(caller)
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "3"}  # 1 / 0.4 = 2.5 s, rounded up
    assert f"{name} is over its limit of 0.4 requests/s" in str(refused.value.detail)
    await limiter.texts(caller, 8)  # burst: the largest request, 8 texts, not 2
    clock.now += 0.1
    with pytest.raises(HTTPException) as refused:
        await limiter.texts(caller, 1)
    assert refused.value.headers == {"Retry-After": "1"}  # 0.4 s, at least 1
    assert (rejected(name, "requests"), rejected(name, "texts")) == (1.0, 1.0)


async def test_callers_without_limits_never_touch_the_buckets() -> None:
    class Refuses:
        async def take(self, name: str, *, rate: float, burst: float, cost: float) -> float:
            raise AssertionError("an unlimited caller was charged")

        async def close(self) -> None:
            pass

    limiter = RateLimiter(Refuses(), max_inputs=8)
    for caller in (Caller("free", frozenset()), Caller(None, frozenset())):
        await limiter.requests(caller)
        await limiter.texts(caller, 8)


def test_redis_buckets_are_chosen_when_the_broker_is_redis() -> None:
    assert isinstance(make_buckets("redis://127.0.0.1:6379/0"), RedisBuckets)
    assert isinstance(make_buckets(""), LocalBuckets)
    assert isinstance(make_buckets("filesystem://"), LocalBuckets)


async def test_redis_down_lets_requests_pass_and_counts_it() -> None:
    before = REGISTRY.get_sample_value("tuneloop_api_rate_limit_errors_total") or 0.0
    buckets = RedisBuckets("redis://127.0.0.1:1/14")  # nothing listens on port 1
    for _ in range(3):
        assert await buckets.take("a:requests", rate=1.0, burst=1.0, cost=1) == 0.0
    await buckets.close()
    assert REGISTRY.get_sample_value("tuneloop_api_rate_limit_errors_total") == before + 3


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in the worker's Redis db, its keys deleted afterwards."""
    require_service(REDIS_URL, "Redis")
    import redis.asyncio

    prefix = f"tuneloop-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    stale = [key async for key in client.scan_iter(match=prefix + "*")]
    if stale:
        await client.delete(*stale)
    await client.aclose()


@pytest.mark.redis
async def test_two_replicas_share_one_budget_in_redis(prefix: str) -> None:
    one, two = (
        RedisBuckets(REDIS_URL, prefix=prefix),
        RedisBuckets(REDIS_URL, prefix=prefix),
    )
    waits = [
        await replica.take("k:texts", rate=1.0, burst=3.0, cost=1)
        for replica in (one, two, one, two)
    ]
    assert waits[:3] == [0.0, 0.0, 0.0] and 0.9 < waits[3] <= 1.0
    assert await one.take("other:texts", rate=1.0, burst=3.0, cost=3) == 0.0
    assert await two.take("k:texts", rate=1.0, burst=3.0, cost=9) > 2.9  # a full bucket
    await asyncio.sleep(0.5)  # refilled on Redis's clock, whichever replica asks
    assert 0.4 < await one.take("k:texts", rate=1.0, burst=3.0, cost=1) < 0.55
    await one.close()
    await two.close()


@pytest.mark.redis
async def test_a_redis_bucket_expires_when_it_would_be_full_again(prefix: str) -> None:
    import redis.asyncio

    buckets = RedisBuckets(REDIS_URL, prefix=prefix)
    assert await buckets.take("k:requests", rate=2.0, burst=4.0, cost=3) == 0.0
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    ttl = await client.pttl(prefix + "k:requests")
    assert 1400 < ttl <= 1501  # 3 tokens at 2/s
    await client.aclose()
    await buckets.close()
