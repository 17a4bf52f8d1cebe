from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.models import AuditEvent, Decision, Status
from approvals.services import action_request_decide, action_requests_expire_due
from core.errors import InvalidInput, TransitionRefused
from tests.factories import PendingRequestFactory
from tests.helpers import reject

pytestmark = pytest.mark.django_db


def test_approval_records_decision_as_evaluation_data(alice):
    request = PendingRequestFactory()

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=True, note="looks right")

    request.refresh_from_db()
    assert request.status == Status.APPROVED
    assert request.final_params == request.params
    assert request.approval_expires_at == request.decided_at + timedelta(seconds=900)
    assert decision.outcome == "approved" and decision.edited is False
    assert decision.reviewer_username == "alice"
    assert decision.original_params == request.params
    assert decision.request_snapshot["summary"] == request.summary
    assert decision.verdict["mode"] == "approve"
    assert decision.seconds_to_decide >= 0
    assert decision.note == "looks right"


def test_edit_keeps_original_beside_final_params(alice):
    request = PendingRequestFactory(params={"to": "wrong@example.org"})

    decision = action_request_decide(
        request_id=request.id, reviewer=alice, approve=True, final_params={"to": "right@example.org"}
    )

    assert decision.edited is True
    assert decision.original_params == {"to": "wrong@example.org"}
    assert decision.final_params == {"to": "right@example.org"}
    assert AuditEvent.objects.get(request=request, kind="edited_and_approved").to_status == "approved"


def test_rejection_needs_a_reason(alice):
    request = PendingRequestFactory()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=False, reason="  ")

    assert exc.value.code == "reason_required"
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_second_reviewer_gets_already_decided_by_the_first(alice, bob):
    request = PendingRequestFactory()
    action_request_decide(request_id=request.id, reviewer=alice, approve=True)

    with pytest.raises(TransitionRefused) as exc:
        action_request_decide(request_id=request.id, reviewer=bob, approve=False, reason_category="other", reason="no")

    assert exc.value.code == "already_decided"
    assert "alice" in exc.value.message
    assert Decision.objects.count() == 1


def test_decision_on_a_changed_card_is_refused(alice):
    request = PendingRequestFactory()

    with pytest.raises(TransitionRefused) as exc:
        action_request_decide(
            request_id=request.id, reviewer=alice, approve=True, seen_revision=request.revision - 1 + 5
        )

    assert exc.value.code == "request_changed"


def test_approve_one_second_after_expiry_fails_even_without_a_sweep(alice):
    request = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=10))

    with time_machine.travel(request.expires_at + timedelta(seconds=1)), pytest.raises(TransitionRefused) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=True)

    assert exc.value.code == "request_expired"
    request.refresh_from_db()
    assert request.status == Status.PENDING  # nothing swept it; it still can't be approved
    assert not Decision.objects.exists()


def test_approve_one_second_before_expiry_succeeds(alice):
    request = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=10))

    with time_machine.travel(request.expires_at - timedelta(seconds=1)):
        action_request_decide(request_id=request.id, reviewer=alice, approve=True)

    request.refresh_from_db()
    assert request.status == Status.APPROVED


def test_sweep_expires_due_requests_and_not_others():
    now = timezone.now()
    due = PendingRequestFactory(expires_at=now - timedelta(seconds=1))
    not_due = PendingRequestFactory(expires_at=now + timedelta(minutes=5))

    assert action_requests_expire_due(now=now) == 1

    due.refresh_from_db()
    not_due.refresh_from_db()
    assert (due.status, not_due.status) == (Status.EXPIRED, Status.PENDING)
    assert AuditEvent.objects.filter(request=due, kind="expired", actor_kind="system").count() == 1
    assert not AuditEvent.objects.filter(request=not_due).exists()


def test_sweep_twice_expires_once():
    due = PendingRequestFactory(expires_at=timezone.now() - timedelta(seconds=1))

    action_requests_expire_due()
    action_requests_expire_due()

    assert AuditEvent.objects.filter(request=due, kind="expired").count() == 1


def test_unused_approval_lapses_after_its_validity(alice):
    request = PendingRequestFactory()
    action_request_decide(request_id=request.id, reviewer=alice, approve=True)
    request.refresh_from_db()

    action_requests_expire_due(now=request.approval_expires_at - timedelta(seconds=1))
    request.refresh_from_db()
    assert request.status == Status.APPROVED

    action_requests_expire_due(now=request.approval_expires_at)
    request.refresh_from_db()
    assert request.status == Status.LAPSED


def test_agent_reading_an_overdue_request_sees_it_expired(api, agent):
    request = PendingRequestFactory(agent=agent, expires_at=timezone.now() + timedelta(seconds=30))

    with time_machine.travel(request.expires_at + timedelta(seconds=1)):
        body = api.get(f"/api/v1/actions/{request.id}/").json()

    assert body["status"] == "expired"


def test_decision_writes_exactly_one_audit_event_for_the_transition(alice):
    request = PendingRequestFactory()

    reject(request.id, alice)

    assert list(AuditEvent.objects.filter(request=request).values_list("kind", "from_status", "to_status")) == [
        ("rejected", "pending", "rejected")
    ]
