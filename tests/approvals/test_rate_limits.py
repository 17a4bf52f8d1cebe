"""Submissions are rate limited per agent and per API key (against the session's real redis-server)."""

from __future__ import annotations

import json
import logging
import signal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from approvals.models import ActionRequest
from approvals.services import agent_key_issue, agent_limits_set
from countersign_servers import start_redis
from tests.helpers import submission_body

SEARCH = {"action_type": "search_web", "params": {"q": "refund policy"}}


@pytest.fixture(autouse=True)
def _policies(default_policies):
    pass


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def post(client: APIClient, *, idempotency_key: str | None = None, **overrides):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    body = json.dumps(submission_body(**{**SEARCH, **overrides}))
    return client.post("/api/v1/actions/", data=body, content_type="application/json", **headers)


def limits(agent, *, per_agent=None, per_key=None, max_pending=None):
    agent_limits_set(
        agent=agent, rate_limit_per_minute=per_agent, key_rate_limit_per_minute=per_key, max_pending=max_pending
    )


def test_each_accepted_submission_carries_the_remaining_budget(agent, api):
    limits(agent, per_agent=3)

    answers = [post(api) for _ in range(3)]

    assert [r.status_code for r in answers] == [201, 201, 201]
    assert [r["RateLimit-Limit"] for r in answers] == ["3", "3", "3"]
    assert [r["RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
    assert all(1 <= int(r["RateLimit-Reset"]) <= 60 for r in answers)


def test_a_submission_over_the_agent_limit_is_refused_with_429_and_retry_after_and_writes_nothing(agent, api):
    limits(agent, per_agent=2)
    post(api)
    post(api)

    refused = post(api)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["limit"] == 2
    assert error["details"]["scope"] == "agent"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["RateLimit-Limit"] == "2"
    assert refused["RateLimit-Remaining"] == "0"
    assert refused["RateLimit-Reset"] == refused["Retry-After"]
    assert ActionRequest.objects.filter(agent=agent).count() == 2


def test_the_agent_limit_counts_all_its_keys_together(agent, api):
    limits(agent, per_agent=3)
    other_key = client_for(agent_key_issue(agent=agent))
    post(api)
    post(api)
    post(other_key)

    refused = post(other_key)

    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["scope"] == "agent"


def test_a_key_limit_tighter_than_the_agent_limit_refuses_that_key_and_not_the_others(agent, api):
    limits(agent, per_agent=10, per_key=2)
    other_key = client_for(agent_key_issue(agent=agent))
    post(api)
    post(api)

    refused = post(api)
    accepted = post(other_key)

    assert refused.status_code == 429
    assert refused.json()["error"]["details"] == {
        "limit": 2,
        "window_seconds": 60,
        "scope": "key",
        "retry_after_seconds": int(refused["Retry-After"]),
    }
    assert accepted.status_code == 201
    assert accepted["RateLimit-Limit"] == "2"
    assert accepted["RateLimit-Remaining"] == "1"


@override_settings(COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE=1)
def test_the_key_limit_setting_applies_to_every_key(agent, api):
    post(api)

    assert post(api).status_code == 429
    assert post(client_for(agent_key_issue(agent=agent))).status_code == 201


@override_settings(COUNTERSIGN_RATE_LIMIT_PER_MINUTE=2)
def test_the_agent_limit_setting_applies_to_an_agent_without_an_override(agent, api):
    post(api)
    post(api)

    assert post(api).status_code == 429


def test_a_key_limit_looser_than_the_agent_limit_changes_nothing(agent, api):
    limits(agent, per_agent=1, per_key=50)
    post(api)

    refused = post(api)

    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["scope"] == "agent"


def test_an_agent_with_limit_zero_is_not_limited_and_gets_no_rate_limit_headers(agent, api):
    limits(agent, per_agent=0)

    answers = [post(api) for _ in range(5)]

    assert [r.status_code for r in answers] == [201] * 5
    assert "RateLimit-Limit" not in answers[-1]


def test_an_idempotent_replay_is_never_refused_by_the_limiter(agent, api):
    limits(agent, per_agent=1)
    first = post(api, idempotency_key="call-1")

    replay = post(api, idempotency_key="call-1")
    new = post(api, idempotency_key="call-2")

    assert (first.status_code, replay.status_code, new.status_code) == (201, 200, 429)
    assert replay.json()["id"] == first.json()["id"]


def test_a_refused_submission_does_not_use_up_the_key_bucket(agent, api):
    # The agent's bucket refuses; the key's own bucket must not have been charged for it.
    limits(agent, per_agent=2, per_key=2)
    other_key = client_for(agent_key_issue(agent=agent))
    statuses = [post(other_key).status_code, post(other_key).status_code, post(api).status_code]
    assert statuses == [201, 201, 429]
    limits(agent, per_agent=10, per_key=2)

    accepted = [post(api), post(api)]

    assert [r.status_code for r in accepted] == [201, 201]


def test_with_the_limiter_redis_stopped_submissions_are_still_limited_and_a_warning_is_logged(agent, api, caplog):
    redis = start_redis()
    try:
        with override_settings(COUNTERSIGN_RATE_LIMIT_REDIS_URL=redis.url):
            limits(agent, per_agent=2)
            assert post(api).status_code == 201
            redis.process.send_signal(signal.SIGTERM)
            redis.process.wait(10)

            with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
                answers = [post(api).status_code for _ in range(3)]
    finally:
        redis.stop()

    # This process's own window starts empty when Redis goes: two more get through, then it refuses.
    assert answers == [201, 201, 429]
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.ratelimit"]
    assert len(warnings) == 1
    assert "Redis unreachable" in warnings[0]
