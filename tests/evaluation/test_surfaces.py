"""Time to decision by surface: /metrics and the dashboard say which doors reviewers decide through."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.services import action_request_decide
from evaluation.selectors import decision_times_by_surface
from tests.factories import PendingRequestFactory

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def decided_everywhere(alice):
    for surface, approve in [("web", True), ("web", False), ("slack", True), ("slack", True), ("email", True)]:
        action_request_decide(
            request_id=PendingRequestFactory().pk,
            reviewer=alice,
            approve=approve,
            reason="" if approve else "Not this one",
            reason_category="" if approve else "wrong_data",
            surface=surface,
        )


def test_metrics_have_a_time_to_decision_histogram_per_surface(decided_everywhere, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    family = {f.name: f for f in text_string_to_metric_families(text)}["countersign_surface_time_to_decision_seconds"]
    counts = {s.labels["surface"]: s.value for s in family.samples if s.name.endswith("_count")}
    assert counts == {"web": 2, "slack": 2, "email": 1}


def test_the_dashboard_lists_every_surface_with_its_decisions(decided_everywhere, alice):
    client = Client()
    client.force_login(alice)
    html = re.sub(r">\s+<", "><", client.get("/dashboard/").content.decode())
    assert "Where decisions are made" in html
    assert 'data-surface="slack"><td>Slack</td><td>2</td><td>2</td>' in html
    assert 'data-surface="push"><td>Push notification</td><td>0</td><td>0</td><td>\u2013</td>' in html


def test_surface_figures_count_approvals_and_percentiles(decided_everywhere):
    now = timezone.now()
    rows = {r["surface"]: r for r in decision_times_by_surface(since=now - timedelta(days=1), until=now + timedelta(1))}
    assert (rows["web"]["decisions"], rows["web"]["approved"]) == (2, 1)
    assert rows["api"]["decisions"] == 0 and rows["api"]["p50_seconds"] is None
    assert rows["email"]["p50_seconds"] is not None
