"""The client waits out a 429 as its Retry-After says, within bounds, then raises RateLimited.

The bounds are checked on the sans-IO core driven by hand (no real waiting); the four ways of
gating a call against the scripted gateway; and both clients against the live gateway.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from countersign_client import AsyncCountersign, Countersign, RateLimited, _core

from approvals.services import agent_limits_set
from tests.client.scripted_gateway import (
    PARAMS,
    REPORT,
    RESULT,
    START,
    SUBMIT,
    WAYS,
    Answer,
    action,
    error,
    outcome_of,
)


class Settings:
    max_retries = 2
    backoff = 0.5
    rate_limit_max_attempts = 3
    rate_limit_max_wait = 30.0


def limited(retry_after: str | None = "7", code: str = "rate_limited") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, json=error(code), headers=headers)


def test_the_core_waits_each_retry_after_and_gives_up_after_max_attempts():
    program = _core.submit(Settings(), "send_email", PARAMS, tool_call_id="call-1")
    first = _core.advance(program)

    pauses = [_core.advance(program, limited()), _core.advance(program)]
    assert [type(p).__name__ for p in pauses] == ["Sleep", "Send"]
    assert pauses[0].seconds == 7
    assert _core.advance(program, limited()).seconds == 7
    third = _core.advance(program)
    assert third.headers == first.headers  # the same Idempotency-Key: a retry, not a new submission
    with pytest.raises(RateLimited) as raised:
        _core.advance(program, limited())

    assert (raised.value.code, raised.value.retry_after) == ("rate_limited", 7)


def test_the_core_raises_at_once_when_the_wait_would_exceed_max_wait():
    program = _core.submit(Settings(), "send_email", PARAMS)
    _core.advance(program)

    with pytest.raises(RateLimited) as raised:
        _core.advance(program, limited("31"))

    assert raised.value.retry_after == 31


def test_the_core_counts_the_total_wait_against_max_wait():
    program = _core.submit(Settings(), "send_email", PARAMS)
    _core.advance(program)
    assert _core.advance(program, limited("20")).seconds == 20
    _core.advance(program)

    with pytest.raises(RateLimited):
        _core.advance(program, limited("20"))


def test_a_429_without_retry_after_is_raised_at_once():
    program = _core.submit(Settings(), "send_email", PARAMS)
    _core.advance(program)

    with pytest.raises(RateLimited) as raised:
        _core.advance(program, limited(None, code="too_many_pending"))

    assert (raised.value.code, raised.value.retry_after) == ("too_many_pending", None)


def test_a_retry_after_given_as_an_http_date_is_read_as_seconds_from_now():
    program = _core.submit(Settings(), "send_email", PARAMS)
    _core.advance(program)
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))

    pause = _core.advance(program, limited(in_ten))

    assert 8 <= pause.seconds <= 10


RAN_AND_REPORTED = [
    Answer(START, action("allowed", execution_started_at="2030-01-01T00:00:00Z")),
    Answer(REPORT, action("executed")),
]


@pytest.mark.parametrize("way", WAYS)
def test_every_way_waits_out_a_short_rate_limit_and_goes_on(way):
    answers = [
        Answer(SUBMIT, error("rate_limited"), status=429, headers={"Retry-After": "0"}),
        Answer(SUBMIT, action("allowed")),
        *RAN_AND_REPORTED,
    ]

    assert outcome_of(WAYS[way], answers) == (("returned", RESULT), [PARAMS])


@pytest.mark.parametrize("way", WAYS)
def test_every_way_raises_rate_limited_once_its_attempts_are_used_up(way):
    answers = [Answer(SUBMIT, error("rate_limited"), status=429, headers={"Retry-After": "0"})] * 3

    assert outcome_of(WAYS[way], answers) == (("RateLimited", "rate_limited", 0.0), [])


# --- against the live gateway ---------------------------------------------------------------


def test_the_sync_client_raises_rate_limited_within_its_wait_bound_against_the_gateway(live_agent, live_url):
    agent, key = live_agent
    agent_limits_set(agent=agent, rate_limit_per_minute=1, key_rate_limit_per_minute=None, max_pending=None)
    with Countersign(live_url, key, rate_limit_max_wait=0.5) as gate:
        gate.submit("search_web", {"q": "one"})
        started = time.monotonic()
        with pytest.raises(RateLimited) as raised:
            gate.submit("search_web", {"q": "two"})

    assert time.monotonic() - started < 2
    assert raised.value.code == "rate_limited"
    assert 0 < raised.value.retry_after <= 60


def test_the_async_client_raises_rate_limited_within_its_wait_bound_against_the_gateway(live_agent, live_url):
    agent, key = live_agent
    agent_limits_set(agent=agent, rate_limit_per_minute=1, key_rate_limit_per_minute=None, max_pending=None)

    async def scenario() -> RateLimited:
        async with AsyncCountersign(live_url, key, rate_limit_max_wait=0.5) as gate:
            await gate.submit("search_web", {"q": "one"})
            try:
                await gate.submit("search_web", {"q": "two"})
            except RateLimited as exc:
                return exc
        raise AssertionError("the second submission was not refused")

    refused = asyncio.run(scenario())

    assert refused.code == "rate_limited"
    assert 0 < refused.retry_after <= 60
