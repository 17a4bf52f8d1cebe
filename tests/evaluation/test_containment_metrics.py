"""Rate-limited, capped and collapsed submissions are counted on /metrics, by agent, action type and kind."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ContainmentCount
from approvals.selectors import containment_counts
from approvals.services import agent_limits_set
from tests.helpers import submission_body

TOKEN = "metrics-secret-token"
pytestmark = pytest.mark.usefixtures("default_policies")


def post(api, **overrides):
    body = json.dumps(submission_body(**overrides))
    return api.post("/api/v1/actions/", data=body, content_type="application/json")


def containment_samples(settings) -> dict[tuple[str, str, str], float]:
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "countersign_containment"]
    return {
        (s.labels["agent"], s.labels["action_type"], s.labels["kind"]): s.value
        for s in family.samples
        if s.name == "countersign_containment_total"
    }


def test_refused_and_collapsed_submissions_are_counted_on_metrics(agent, api, settings):
    agent_limits_set(agent=agent, rate_limit_per_minute=6, key_rate_limit_per_minute=None, max_pending=2)
    post(api)  # pending
    post(api)  # the same again: collapsed
    post(api, params={"to": "b@example.org"})  # pending, the cap is now reached
    post(api, params={"to": "c@example.org"})  # too many pending
    post(api, params={"to": "d@example.org"})  # too many pending
    post(api, action_type="search_web")  # allowed: the sixth in the minute
    post(api, action_type="search_web")  # rate limited

    assert containment_samples(settings) == {
        ("support-bot", "send_external_email", "collapsed"): 1.0,
        ("support-bot", "send_external_email", "too_many_pending"): 2.0,
        ("support-bot", "search_web", "rate_limited"): 1.0,
    }


def test_each_refusal_adds_to_one_row_per_day_agent_action_type_and_kind(agent, api):
    agent_limits_set(agent=agent, rate_limit_per_minute=1, key_rate_limit_per_minute=None, max_pending=None)
    post(api, action_type="search_web")

    for _ in range(5):
        post(api, action_type="search_web")

    assert ContainmentCount.objects.count() == 1
    assert containment_counts() == [
        {"agent": "support-bot", "action_type": "search_web", "kind": "rate_limited", "count": 5}
    ]
