"""The release gate: replay a seeded history against a draft table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import ActionRequest, Decision
from policies.models import Policy
from policies.selectors import policy_table_from_rows
from policies.services import policy_draft_save
from policies.simulation import policy_table_simulate
from tests.factories import AgentFactory, PendingRequestFactory

pytestmark = pytest.mark.django_db


def decide(request, outcome, reviewer):
    now = timezone.now()
    request.status = outcome
    request.save()
    Decision.objects.create(
        request=request,
        outcome=outcome,
        reviewer=reviewer,
        reviewer_username=reviewer.username,
        original_params=request.params,
        request_snapshot={},
        verdict={},
        decided_at=now,
        seconds_to_decide=1,
    )


@pytest.fixture
def history(alice):
    """34 emails to colleagues and 3 to customers went to humans (2 rejected); 5 searches ran."""
    agent = AgentFactory(name="mailer")
    for index in range(34):
        PendingRequestFactory(agent=agent, params={"to": f"p{index}@example.com"})
    outside = [PendingRequestFactory(agent=agent, params={"to": f"c{i}@customer.org"}) for i in range(3)]
    decide(outside[0], "rejected", alice)
    decide(outside[1], "rejected", alice)
    colleague = ActionRequest.objects.filter(params__to="p0@example.com").get()
    decide(colleague, "rejected", alice)
    for _ in range(5):
        PendingRequestFactory(agent=agent, action_type="search_web", mode="auto", status="allowed")
    old = PendingRequestFactory(agent=agent, params={"to": "old@example.com"})
    ActionRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))


DRAFT = [
    {
        "action_pattern": "send_external_email",
        "mode": "auto",
        "condition": 'params.to.endsWith("@example.com")',
        "priority": 10,
    },
    {"action_pattern": "send_external_email", "mode": "approve"},
    {"action_pattern": "search_web", "mode": "auto"},
]


def test_simulation_counts_mode_changes_per_action_type(history):
    report = policy_table_simulate(table=policy_table_from_rows(DRAFT), days=7)

    assert report.replayed == 42  # the 30-day-old request is outside the window
    email = next(c for c in report.changes if c.action_type == "send_external_email")
    assert (email.requests, email.changed, email.transitions) == (37, 34, {"approve->auto": 34})
    assert email.previously_rejected_now_unattended == 1
    assert "34 send_external_email would go from approve to auto" in report.summary()
    search = next(c for c in report.changes if c.action_type == "search_web")
    assert search.changed == 0


def test_simulation_flags_human_rejections_that_would_now_run_unattended(history):
    report = policy_table_simulate(table=policy_table_from_rows([{"action_pattern": "*", "mode": "log"}]), days=7)

    email = next(c for c in report.changes if c.action_type == "send_external_email")
    assert email.previously_rejected_now_unattended == 3
    assert report.previously_rejected_now_unattended == 3


def test_simulation_by_last_n_requests(history):
    report = policy_table_simulate(table=policy_table_from_rows(DRAFT), limit=10)

    assert report.replayed == 10


def test_simulation_writes_nothing(history):
    before = list(ActionRequest.objects.order_by("id").values_list("id", "mode", "status"))

    policy_table_simulate(table=policy_table_from_rows(DRAFT), days=7)

    assert list(ActionRequest.objects.order_by("id").values_list("id", "mode", "status")) == before
    assert not Policy.objects.exists()


def test_simulate_endpoint_with_rows(history, admin_user):
    client = APIClient()
    client.force_login(admin_user)

    response = client.post("/api/v1/policies/simulate/", {"rows": DRAFT, "days": 7}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert data["replayed"] == 42
    assert data["by_action_type"][0]["transitions"] == {"approve->auto": 34}
    assert data["previously_rejected_now_unattended"] == 1


def test_simulate_endpoint_with_a_saved_draft(history, admin_user):
    draft = policy_draft_save(actor=admin_user, name="loosen", rows=DRAFT)
    client = APIClient()
    client.force_login(admin_user)

    response = client.post("/api/v1/policies/simulate/", {"draft_id": draft.id, "limit": 5}, format="json")

    assert response.status_code == 200
    assert response.json()["replayed"] == 5


def test_simulate_endpoint_refuses_a_draft_whose_condition_does_not_compile(admin_user):
    client = APIClient()
    client.force_login(admin_user)

    response = client.post(
        "/api/v1/policies/simulate/",
        {"rows": [{"action_pattern": "x", "mode": "auto", "condition": "1 +"}]},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_condition"


def test_simulate_endpoint_is_staff_only(alice):
    client = APIClient()
    client.force_login(alice)

    assert client.post("/api/v1/policies/simulate/", {"rows": []}, format="json").status_code == 403
