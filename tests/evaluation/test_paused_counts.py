"""Submissions blocked by a pause, counted on /metrics and on the dashboard."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from approvals.services import action_type_pause, agent_create, agent_pause, agent_resume
from tests.helpers import submit_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

TOKEN = "metrics-secret-token"


@pytest.fixture
def paused_history(agent):
    other, _ = agent_create(name="other-bot")
    agent_pause(agent_name=agent.name, reason="Runaway <i>loop</i>", by_label="sam")
    submit_as(agent)
    submit_as(agent, action_type="search_web")
    agent_resume(agent_name=agent.name, by_label="sam")
    action_type_pause(action_type="send_external_email", reason="Mail incident", by_label="sam")
    submit_as(other)
    submit_as(agent, action_type="update_customer_record")  # not paused: pending, not counted
    return agent


def scrape(settings) -> dict[str, dict[tuple, float]]:
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_paused_submissions_by_agent(paused_history, settings):
    by_agent = scrape(settings)["countersign_agent_paused_submissions_total"]

    assert by_agent == {
        (("agent", "support-bot"), ("reason", "agent_paused")): 2,
        (("agent", "other-bot"), ("reason", "action_type_paused")): 1,
    }


def test_metrics_count_paused_submissions_by_action_type(paused_history, settings):
    by_type = scrape(settings)["countersign_paused_submissions_total"]

    assert by_type == {
        (("action_type", "send_external_email"), ("reason", "agent_paused")): 1,
        (("action_type", "search_web"), ("reason", "agent_paused")): 1,
        (("action_type", "send_external_email"), ("reason", "action_type_paused")): 1,
    }


def test_the_dashboard_shows_paused_counts_and_the_pauses_in_force(paused_history, alice, client):
    client.force_login(alice)

    html = client.get("/dashboard/").content.decode()

    assert html.count('class="paused-row"') == 3
    assert "action type send_external_email (by sam: Mail incident)" in html
    assert "Runaway" not in html  # a resumed pause is not "paused now"


def test_the_dashboard_escapes_the_pause_reason(agent, alice, client):
    agent_pause(agent_name=agent.name, reason="<script>alert(1)</script>", by_label="sam")
    client.force_login(alice)

    html = client.get("/dashboard/").content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
