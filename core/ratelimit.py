"""A sliding-window rate limiter kept in Redis, with a per-process fallback when Redis is down.

Knows no app: callers pass the bucket name, the limit and the window. One round trip per check:
a Lua script trims the window, counts and (if under the limit) records the hit atomically, so
concurrent checks against one bucket never let more than ``limit`` through.

When Redis cannot be reached the same limit is applied in this process's memory (logged once per
outage): with N processes an agent may get up to N x limit through, never "no limit and no word".
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: now_ms, window_ms, limit, member. Returns {allowed, count, oldest_ms}.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', key, window)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local oldest_ms = now
if oldest[2] then oldest_ms = tonumber(oldest[2]) end
return {allowed, count, oldest_ms}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted hit leaves the window
    retry_after_seconds: int  # 0 when allowed
    fallback: bool = False  # decided in process memory because Redis was unreachable


class SlidingWindowLimiter:
    def __init__(self, url: str, *, prefix: str = "countersign:rl", socket_timeout: float = 0.5) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
        self._script = self._client.register_script(_SLIDING_WINDOW)
        self._prefix = prefix
        self._lock = threading.Lock()
        self._local: dict[str, deque[float]] = {}
        self._degraded = False

    def hit(self, bucket: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit against ``bucket`` unless it already holds ``limit`` hits in the window."""
        now = time.time()
        try:
            allowed, count, oldest_ms = self._script(
                keys=[f"{self._prefix}:{bucket}"],
                args=[int(now * 1000), window_seconds * 1000, limit, uuid.uuid4().hex],
            )
        except redis.RedisError as exc:
            if not self._degraded:
                self._degraded = True
                logger.warning("Rate limiter: Redis unreachable (%s); limiting in process memory until it is back", exc)
            return self._hit_locally(bucket, limit=limit, window_seconds=window_seconds, now=now)
        if self._degraded:
            self._degraded = False
            logger.warning("Rate limiter: Redis reachable again; limits are shared across processes again")
        return _decision(bool(allowed), limit, int(count), oldest_ms / 1000, window_seconds, now)

    def _hit_locally(self, bucket: str, *, limit: int, window_seconds: int, now: float) -> RateDecision:
        with self._lock:
            hits = self._local.setdefault(bucket, deque())
            while hits and hits[0] <= now - window_seconds:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            oldest = hits[0] if hits else now
            return _decision(allowed, limit, len(hits), oldest, window_seconds, now, fallback=True)


def _decision(
    allowed: bool, limit: int, count: int, oldest: float, window: int, now: float, *, fallback: bool = False
) -> RateDecision:
    # Another process may have stamped the oldest hit a moment after our clock read: clamp to the window.
    reset = min(window, max(1, math.ceil(oldest + window - now)))
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=reset,
        retry_after_seconds=0 if allowed else reset,
        fallback=fallback,
    )


class TokenBucket:
    """A rate for one holder in one process (e.g. one websocket connection): ``rate`` tokens a
    second, up to ``burst`` saved; each ``take`` spends one. Nothing shared, so nothing to lock:
    a consumer handles its messages one at a time."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
