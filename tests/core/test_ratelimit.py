"""core.ratelimit against the session's real redis-server, and against a dead port (the fallback)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
import warnings

import redis

from core.ratelimit import SlidingWindowLimiter
from countersign_servers import start_redis
from tests.helpers import run_at_once


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"redis://127.0.0.1:{port}/0"


def test_sixteen_hits_at_once_against_a_limit_of_five_let_exactly_five_through():
    limiter = SlidingWindowLimiter(os.environ["REDIS_URL"])
    bucket = f"test-{uuid.uuid4()}"
    results = run_at_once(lambda _: limiter.hit(bucket, limit=5, window_seconds=60), count=16)
    decisions = [value for kind, value in results if kind == "ok"]
    assert len(decisions) == 16
    assert sum(d.allowed for d in decisions) == 5
    refused = [d for d in decisions if not d.allowed]
    assert all(d.remaining == 0 and 0 < d.retry_after_seconds <= 60 and not d.fallback for d in refused)


def test_with_redis_down_the_limit_still_holds_in_process_memory():
    limiter = SlidingWindowLimiter(_dead_url(), socket_timeout=0.2)
    decisions = [limiter.hit("agent-x", limit=3, window_seconds=60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert all(d.fallback for d in decisions)
    assert decisions[-1].retry_after_seconds > 0


def test_two_buckets_in_one_call_let_through_only_what_the_tighter_allows_at_once():
    limiter = SlidingWindowLimiter(os.environ["REDIS_URL"])
    agent, key = f"agent-{uuid.uuid4()}", f"key-{uuid.uuid4()}"
    results = run_at_once(lambda _: limiter.hit_all({agent: 10, key: 4}, window_seconds=60), count=16)
    decisions = [value for kind, value in results if kind == "ok"]
    assert len(decisions) == 16
    assert sum(d.allowed for d in decisions) == 4
    assert {d.bucket for d in decisions if not d.allowed} == {key}


def test_a_hit_refused_by_one_bucket_is_counted_in_none():
    limiter = SlidingWindowLimiter(os.environ["REDIS_URL"])
    agent, key = f"agent-{uuid.uuid4()}", f"key-{uuid.uuid4()}"
    limiter.hit(agent, limit=1, window_seconds=60)
    assert not limiter.hit_all({agent: 1, key: 5}, window_seconds=60).allowed
    decision = limiter.hit(key, limit=5, window_seconds=60)
    assert (decision.allowed, decision.remaining) == (True, 4)


def test_with_redis_down_two_buckets_are_still_checked_together_in_process_memory():
    limiter = SlidingWindowLimiter(_dead_url(), socket_timeout=0.2)
    allowed = [limiter.hit_all({"agent-y": 5, "key-y": 2}, window_seconds=60).allowed for _ in range(3)]
    assert allowed == [True, True, False]
    assert limiter.hit_all({"agent-y": 5, "key-z": 2}, window_seconds=60).allowed


def test_after_a_redis_restart_the_next_hit_is_counted_in_redis_again_not_in_memory(caplog):
    """A kept connection the restart closed is replaced by a new one, and the script the new server
    never saw is loaded again, within the same call."""
    server = start_redis()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    limiter = SlidingWindowLimiter(server.url)
    try:
        before = [limiter.hit("agent-r", limit=5, window_seconds=60) for _ in range(2)]
        server.stop()
        server = start_redis(port=port)
        after = limiter.hit("agent-r", limit=5, window_seconds=60)
    finally:
        server.stop()
    assert [(d.allowed, d.remaining, d.fallback) for d in before] == [(True, 4, False), (True, 3, False)]
    # The new server starts empty: the hit is its first, counted there.
    assert (after.allowed, after.remaining, after.fallback) == (True, 4, False)
    assert "unreachable" not in caplog.text


def test_calls_from_one_thread_after_another_share_one_connection():
    """Under ASGI each request's sync code runs in a thread of its own: a connection per thread
    would be a new connection per submission."""
    server = start_redis()
    admin = redis.Redis.from_url(server.url)
    try:
        before = admin.info("stats")["total_connections_received"]
        limiter = SlidingWindowLimiter(server.url)
        for _ in range(20):
            thread = threading.Thread(
                target=limiter.hit, args=("agent-t",), kwargs={"limit": 100, "window_seconds": 60}
            )
            thread.start()
            thread.join()
        opened = admin.info("stats")["total_connections_received"] - before
        counted = admin.zcard("countersign:rl:agent-t")
    finally:
        admin.close()
        server.stop()
    assert counted == 20
    assert opened == 1


def test_a_forked_process_does_not_share_its_parents_connection():
    server = start_redis()
    admin = redis.Redis.from_url(server.url)
    try:
        limiter = SlidingWindowLimiter(server.url)
        limiter.hit("agent-f", limit=100, window_seconds=60)  # the parent's connection, now idle
        before = admin.info("stats")["total_connections_received"]
        with warnings.catch_warnings():
            # The child makes one Redis call and exits: none of the threads fork() warns about is needed there.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            child = os.fork()
        if child == 0:  # pragma: no cover (the child's result is its exit code)
            try:
                decision = limiter.hit("agent-f", limit=100, window_seconds=60)
                os._exit(0 if decision.allowed and not decision.fallback else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(child, 0)
        opened = admin.info("stats")["total_connections_received"] - before
        counted = admin.zcard("countersign:rl:agent-f")
    finally:
        admin.close()
        server.stop()
    assert os.waitstatus_to_exitcode(status) == 0
    assert (opened, counted) == (1, 2)


def test_a_token_bucket_allows_the_burst_then_the_rate():
    from core.ratelimit import TokenBucket

    now = [100.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])

    burst = [bucket.take() for _ in range(4)]
    now[0] += 0.5  # one token back at 2 a second
    after_half_a_second = [bucket.take(), bucket.take()]
    now[0] += 60  # never more than the burst saved
    after_a_minute = [bucket.take() for _ in range(4)]

    assert burst == [True, True, True, False]
    assert after_half_a_second == [True, False]
    assert after_a_minute == [True, True, True, False]


def test_redis_replies_are_parsed_in_c_by_the_limiter_and_the_channel_layer():
    """requirements.txt installs hiredis, which redis-py then uses for every reply (sync and asyncio clients)."""
    import redis.asyncio.connection
    import redis.connection
    from redis._parsers import _AsyncHiredisParser, _HiredisParser

    assert redis.connection.DefaultParser is _HiredisParser
    assert redis.asyncio.connection.DefaultParser is _AsyncHiredisParser
