"""A sliding-window rate limiter kept in Redis, with a per-process fallback when Redis is down.

Knows no app: callers pass the bucket names, their limits and the window. One round trip per check,
however many buckets: a Lua script trims each window, counts and (if every bucket is under its limit)
records the hit in all of them atomically, so concurrent checks never let more than ``limit`` through.

When Redis cannot be reached the same limit is applied in this process's memory (logged once per
outage): with N processes an agent may get up to N x limit through, never "no limit and no word".
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)

# KEYS: one bucket each; ARGV: now_ms, window_ms, member, then one limit per key.
# A hit is recorded in every bucket or in none: a refused call costs no bucket anything.
# Returns {allowed, count_1, oldest_ms_1, count_2, oldest_ms_2, ...}.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local counts = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= tonumber(ARGV[3 + i]) then allowed = 0 end
end
local result = {allowed}
for i, key in ipairs(KEYS) do
  if allowed == 1 then
    redis.call('ZADD', key, now, ARGV[3])
    counts[i] = counts[i] + 1
  end
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local oldest_ms = now
  if oldest[2] then oldest_ms = tonumber(oldest[2]) end
  result[#result + 1] = counts[i]
  result[#result + 1] = oldest_ms
end
return result
"""
# EVALSHA names a script by this; the server is sent the script itself only when it lacks it.
_SLIDING_WINDOW_SHA = hashlib.sha1(_SLIDING_WINDOW.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted hit leaves the window
    retry_after_seconds: int  # 0 when allowed
    fallback: bool = False  # decided in process memory because Redis was unreachable
    bucket: str = ""  # the bucket this decision describes: the refusing one, or the one with least left


class SlidingWindowLimiter:
    def __init__(self, url: str, *, prefix: str = "countersign:rl", socket_timeout: float = 0.5) -> None:
        self._pool = redis.ConnectionPool.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._prefix = prefix
        self._lock = threading.Lock()
        self._local: dict[str, deque[float]] = {}
        self._degraded = False
        self._idle: list[redis.Connection] = []
        self._idle_lock = threading.Lock()
        self._idle_pid = os.getpid()

    def _evalsha(self, keys: list[str], args: list[object]) -> list[int]:
        """The script's reply, on a connection of the limiter's own, borrowed for the call.

        Every submission runs this: through the client (pool checkout and return, retry wrapper,
        instrumentation hooks) redis-py spent about as much CPU as the round trip itself
        (bench/README.md). Connections are kept in a list, not per thread: under ASGI each
        request runs in a thread of its own; a forked child starts a list of its own. One found closed (a Redis restart, an idle timeout)
        is dropped and the call sent once more on a new one; a script the server lost (restart,
        SCRIPT FLUSH) is loaded again.
        """
        if self._idle_pid != os.getpid():
            # A forked child: the connections are its parent's, whose replies it must never read.
            self._idle, self._idle_lock, self._idle_pid = [], threading.Lock(), os.getpid()
        with self._idle_lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                reply = self._evalsha_on(connection, keys, args)
            except redis.ConnectionError:
                connection = None  # it had worked: most likely closed meanwhile, so one more try on a new one
        if connection is None:
            connection = self._pool.connection_class(**self._pool.connection_kwargs)
            reply = self._evalsha_on(connection, keys, args)
        with self._idle_lock:
            self._idle.append(connection)  # kept only while it works
        return reply

    @staticmethod
    def _evalsha_on(connection: redis.Connection, keys: list[str], args: list[object]) -> list[int]:
        command = ("EVALSHA", _SLIDING_WINDOW_SHA, len(keys), *keys, *args)
        try:
            connection.send_command(*command)
            try:
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                connection.send_command("SCRIPT", "LOAD", _SLIDING_WINDOW)
                connection.read_response()
                connection.send_command(*command)
                return connection.read_response()
        except redis.ResponseError:
            raise  # a whole reply was read: the connection is still in step
        except BaseException:
            # A reply may still be on its way: the connection is never used again.
            connection.disconnect()
            raise

    def hit(self, bucket: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit against ``bucket`` unless it already holds ``limit`` hits in the window."""
        return self.hit_all({bucket: limit}, window_seconds=window_seconds)

    def hit_all(self, limits: dict[str, int], *, window_seconds: int) -> RateDecision:
        """Count one hit against every bucket in ``limits`` (bucket -> limit), in one round trip.

        Allowed only if every bucket is under its limit; then the hit is counted in all of them,
        otherwise in none. The decision describes the bucket that refused (the one whose wait is
        longest), or, when allowed, the one with the least left.
        """
        now = time.time()
        buckets = list(limits)
        try:
            reply = self._evalsha(
                [f"{self._prefix}:{bucket}" for bucket in buckets],
                [int(now * 1000), window_seconds * 1000, uuid.uuid4().hex, *(limits[b] for b in buckets)],
            )
        except (redis.RedisError, OSError) as exc:
            if not self._degraded:
                self._degraded = True
                logger.warning("Rate limiter: Redis unreachable (%s); limiting in process memory until it is back", exc)
            return self._hit_locally(limits, window_seconds=window_seconds, now=now)
        if self._degraded:
            self._degraded = False
            logger.warning("Rate limiter: Redis reachable again; limits are shared across processes again")
        allowed = bool(reply[0])
        decisions = [
            _decision(allowed, limits[b], int(reply[1 + 2 * i]), reply[2 + 2 * i] / 1000, window_seconds, now, bucket=b)
            for i, b in enumerate(buckets)
        ]
        return _binding(decisions)

    def _hit_locally(self, limits: dict[str, int], *, window_seconds: int, now: float) -> RateDecision:
        with self._lock:
            windows = {}
            for bucket in limits:
                hits = self._local.setdefault(bucket, deque())
                while hits and hits[0] <= now - window_seconds:
                    hits.popleft()
                windows[bucket] = hits
            allowed = all(len(windows[b]) < limit for b, limit in limits.items())
            if allowed:
                for hits in windows.values():
                    hits.append(now)
            decisions = [
                _decision(
                    allowed,
                    limit,
                    len(windows[b]),
                    windows[b][0] if windows[b] else now,
                    window_seconds,
                    now,
                    fallback=True,
                    bucket=b,
                )
                for b, limit in limits.items()
            ]
            return _binding(decisions)


def _binding(decisions: list[RateDecision]) -> RateDecision:
    if decisions[0].allowed:
        return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))
    full = [d for d in decisions if d.remaining == 0]
    return max(full or decisions, key=lambda d: d.reset_seconds)


def _decision(
    allowed: bool,
    limit: int,
    count: int,
    oldest: float,
    window: int,
    now: float,
    *,
    fallback: bool = False,
    bucket: str = "",
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
        bucket=bucket,
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
