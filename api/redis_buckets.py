"""Rate-limit buckets in Redis, shared by every api replica; chosen when the broker is Redis.

One Lua script refills and takes atomically on Redis's own clock (`TIME`), so replicas whose
clocks disagree still share one budget; a bucket expires once it would be full again, so idle
keys leave nothing behind. When Redis fails, requests pass (fail open): a limiter outage must not
take prediction down. Each failure is counted, and logged at most once a minute.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlparse

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api import metrics
from api.ratelimit import Buckets, LocalBuckets

log = logging.getLogger(__name__)

PREFIX = "tuneloop:ratelimit:"
# A limiter that answers slower than this lets the request pass: predict takes a few ms.
TIMEOUT_SECONDS = 0.25
LOG_EVERY_SECONDS = 60.0
# `api.ratelimit.take` in Lua. Numbers go back as a string: Redis truncates a Lua number. A write
# after TIME needs Redis 5 or later (scripts replicate their effects; compose runs 7).
TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), burst)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if held[1] then
  tokens = math.min(burst, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) * rate)
end
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets under `prefix` in the Redis at `url`; every replica pointed there shares them."""

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._script: Any = self._redis.register_script(TAKE)  # EVALSHA, EVAL when unknown
        self._prefix = prefix
        self._logged_at = -LOG_EVERY_SECONDS

    async def take(self, name: str, *, rate: float, burst: float, cost: float) -> float:
        """Take `cost` from the bucket `name`: 0 when taken (or Redis failed), else the wait."""
        try:
            wait = await self._script(keys=[self._prefix + name], args=[rate, burst, cost])
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return 0.0
        return float(wait)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    def _failed(self, exc: Exception) -> None:
        metrics.RATE_LIMIT_ERRORS.inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning("rate limits not enforced: Redis failed (%s); requests pass", exc)


def make_buckets(broker_url: str) -> Buckets:
    """Redis buckets when the broker is Redis (replicas run), else buckets in this process."""
    if urlparse(broker_url).scheme in ("redis", "rediss"):
        return RedisBuckets(broker_url)
    return LocalBuckets()
