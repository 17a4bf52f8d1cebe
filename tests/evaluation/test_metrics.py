from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ActionRequest
from evaluation.candidates import auto_candidates
from evaluation.selectors import metrics_by
from tests.evaluation.synthetic import Case, write_history
from tests.factories import AgentFactory, PendingRequestFactory

TOKEN = "metrics-secret-token"


@pytest.fixture
def history(agent):
    cases = (
        [Case(seconds=10)] * 6
        + [Case(edited=True, seconds=20)] * 2
        + [Case(outcome="rejected", reason="pii: x", seconds=100)] * 2
        + [Case(outcome="expired")] * 2
    )
    write_history(agent=agent, action_type="send_email", cases=cases)
    PendingRequestFactory(agent=agent, action_type="send_email", status="blocked", mode="block", expires_at=None)
    PendingRequestFactory(agent=agent, action_type="send_email", status="allowed", mode="auto", expires_at=None)
    return agent


def _window():
    now = timezone.now()
    return {"since": now - timedelta(days=2), "until": now + timedelta(minutes=1)}


def test_metrics_by_action_type_counts_rates_and_percentiles(history):
    (row,) = metrics_by(group="action_type", **_window())
    assert row.key == "send_email"
    assert row.total == 14
    assert row.by_mode == {"auto": 1, "log": 0, "approve": 12, "block": 1}
    assert row.escalation_rate == round(12 / 14, 4)
    assert (row.approved, row.edited, row.rejected, row.expired, row.blocked) == (8, 2, 2, 2, 1)
    assert row.approval_rate == round(8 / 12, 4)
    assert row.rejection_rate == round(2 / 12, 4)
    assert row.expiry_rate == round(2 / 12, 4)
    assert row.p50_seconds == 10
    assert row.p95_seconds == 100


def test_approvals_never_executed_are_counted(history):
    first = ActionRequest.objects.filter(status="approved").order_by("id").first()
    ActionRequest.objects.filter(pk=first.pk).update(status="lapsed")
    (row,) = metrics_by(group="agent", **_window())
    assert row.key == history.name
    assert row.never_executed == 1


def test_executions_are_counted_by_reported_outcome(history):
    approved = list(ActionRequest.objects.filter(status="approved").order_by("id")[:3])
    for request, outcome in zip(approved, ["succeeded", "succeeded", "failed"], strict=True):
        ActionRequest.objects.filter(pk=request.pk).update(status="executed", execution_status=outcome)
    (row,) = metrics_by(group="action_type", **_window())
    assert (row.executed, row.execution_succeeded, row.execution_failed) == (3, 2, 1)
    assert row.as_dict()["execution_failed"] == 1


def test_auto_candidates_lists_types_approved_unedited_every_time(agent):
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 20)
    write_history(agent=agent, action_type="refund", cases=[Case()] * 19 + [Case(edited=True)])
    assert [(c.action_type, c.condition) for c in auto_candidates(last_n=20)] == [("lookup_order", "")]


def test_auto_candidate_with_a_condition_when_only_one_agent_is_always_approved(agent):
    other = AgentFactory(name='billing "bot"')
    write_history(agent=agent, action_type="refund", cases=[Case()] * 20)
    write_history(agent=other, action_type="refund", cases=[Case()] * 19 + [Case(outcome="rejected", reason="x")])
    (candidate,) = auto_candidates(last_n=20)
    assert (candidate.action_type, candidate.agent) == ("refund", agent.name)
    assert candidate.condition == f'agent.name == "{agent.name}"'


def test_an_action_type_already_relaxed_is_no_candidate(agent):
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 20)
    PendingRequestFactory(agent=agent, action_type="lookup_order", status="allowed", mode="log", expires_at=None)
    assert auto_candidates(last_n=20) == []


# --- /metrics ------------------------------------------------------------------------------


def _families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_endpoint_is_scraped_and_parsed(history, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    families = _families(response.content.decode())
    requests = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["countersign_action_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[(("action_type", "send_email"), ("mode", "approve"))] == 12
    decisions = {
        (s.labels["outcome"], s.labels["edited"]): s.value
        for s in families["countersign_decisions"].samples
        if s.name.endswith("_total")
    }
    assert decisions == {("approved", "false"): 6, ("approved", "true"): 2, ("rejected", "false"): 2}
    histogram = families["countersign_time_to_decision_seconds"]
    counts = {s.labels.get("le"): s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert counts["15.0"] == 6
    assert counts["+Inf"] == 10


def test_metrics_refuse_a_wrong_token(db, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert Client().get("/metrics").status_code == 401


def test_metrics_are_refused_in_production_without_a_token(db, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = ""
    settings.COUNTERSIGN_PRODUCTION = True
    assert Client().get("/metrics").status_code == 403


def test_metric_labels_are_bounded_whatever_the_number_of_action_types(db, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    settings.COUNTERSIGN_METRICS_MAX_LABEL_VALUES = 5
    agent = AgentFactory()
    for i in range(30):
        write_history(agent=agent, action_type=f"invented_{i}", cases=[Case()] * (1 + (i == 0)))
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    samples = [s for s in _families(text)["countersign_action_requests"].samples if s.name.endswith("_total")]
    labels = {s.labels["action_type"] for s in samples}
    assert len(labels) == 6  # five busiest + "other"
    assert "other" in labels
    assert sum(s.value for s in samples) == 31


def test_metrics_carry_per_policy_labels_named_by_pattern(history, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    PendingRequestFactory(agent=history, action_type="wire_transfer", policy_pattern="")
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    families = _families(text)
    by_policy = {
        (s.labels["policy"], s.labels["mode"]): s.value
        for s in families["countersign_policy_action_requests"].samples
        if s.name.endswith("_total")
    }
    assert by_policy[("send_email", "approve")] == 12
    assert by_policy[("(default)", "approve")] == 1, "no policy matched: the fail-closed default"
    decisions = {
        (s.labels["policy"], s.labels["outcome"]): s.value
        for s in families["countersign_policy_decisions"].samples
        if s.name.endswith("_total") and s.labels["edited"] == "false"
    }
    assert decisions == {("send_email", "approved"): 6, ("send_email", "rejected"): 2}
    histogram = families["countersign_policy_time_to_decision_seconds"]
    counts = {
        s.labels["le"]: s.value
        for s in histogram.samples
        if s.name.endswith("_bucket") and s.labels["policy"] == "send_email"
    }
    assert counts["+Inf"] == 10
    agents = {s.labels["agent"] for s in families["countersign_agent_decisions"].samples}
    assert agents == {history.name}


def test_policy_labels_are_bounded_too(db, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = TOKEN
    settings.COUNTERSIGN_METRICS_MAX_LABEL_VALUES = 3
    agent = AgentFactory()
    for i in range(10):
        write_history(agent=agent, action_type=f"invented_{i}", cases=[Case()])
    families = _families(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    for name in ("countersign_policy_action_requests", "countersign_policy_decisions"):
        labels = {s.labels["policy"] for s in families[name].samples}
        assert len(labels) == 4 and "other" in labels, name
