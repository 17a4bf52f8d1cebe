"""Appenders racing on one request's audit chain (real threads and connections, SQLite and PostgreSQL):
the chain stays whole, every loser is a clean refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.audit_chain import audit_chain_verify_all, audit_chain_verify_request
from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, AuditEvent
from approvals.services import action_request_decide, action_request_report_execution
from approvals.services._effects import audit
from approvals.services.deadlines import request_expire
from core.errors import TransitionRefused
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory
from tests.helpers import run_at_once, submit_as, to_approved

THREADS = 8


def assert_whole_chain(request: ActionRequest, events: int) -> None:
    check = audit_chain_verify_request(request_id=request.pk)
    assert check.ok, [str(p) for p in check.problems]
    assert check.events == events
    positions = list(AuditEvent.objects.filter(request=request).order_by("position").values_list("position", flat=True))
    assert positions == list(range(1, events + 1))


@pytest.mark.django_db(transaction=True)
def test_eight_appenders_holding_stale_copies_of_one_request_take_eight_distinct_positions():
    request = PendingRequestFactory()
    copies = [ActionRequest.objects.get(pk=request.pk) for _ in range(THREADS)]

    def append(i: int) -> int:
        with transaction.atomic():
            event = audit(copies[i], kind="note", now=timezone.now(), actor_kind="system", actor_label=f"t{i}")
        return event.position

    results = run_at_once(append, THREADS)

    assert all(kind == "ok" for kind, _ in results), results
    assert sorted(position for _, position in results) == list(range(1, THREADS + 1))
    assert_whole_chain(request, THREADS)


@pytest.mark.django_db(transaction=True)
def test_eight_quorum_votes_at_once_leave_a_whole_chain():
    reviewers = [reviewer_create(username=f"voter{i}", password="pw-long-enough") for i in range(THREADS)]
    request = PendingRequestFactory(required_approvals=THREADS)

    results = run_at_once(
        lambda i: action_request_decide(request_id=request.id, reviewer=reviewers[i], approve=True), THREADS
    )

    assert all(kind == "ok" for kind, _ in results), results
    kinds = list(AuditEvent.objects.filter(request=request).order_by("position").values_list("kind", flat=True))
    assert kinds == ["vote_approve"] * (THREADS - 1) + ["approved"]
    assert_whole_chain(request, THREADS)


@pytest.mark.django_db(transaction=True)
def test_decisions_racing_the_expiry_sweep_leave_one_transition_and_a_whole_chain(alice):
    request = PendingRequestFactory(expires_at=timezone.now() + timedelta(seconds=30))
    sweep_time = timezone.now() + timedelta(minutes=5)

    def race(i: int):
        if i % 2:
            return request_expire(request.pk, now=sweep_time)
        return action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    results = run_at_once(race, THREADS)

    errors = [value for kind, value in results if kind == "error"]
    assert all(isinstance(exc, TransitionRefused) for exc in errors), errors
    assert AuditEvent.objects.filter(request=request).count() == 1
    assert_whole_chain(request, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_policies")
def test_eight_reports_at_once_chain_the_execution_and_the_seven_violations(agent, alice):
    request = submit_as(agent)
    to_approved(agent, request, alice)
    request.refresh_from_db()
    report = {"approval_token": approval_token(request), "reported_params_hash": final_params_hash(request)}

    run_at_once(
        lambda _: action_request_report_execution(agent=agent, request_id=request.pk, outcome="succeeded", **report),
        THREADS,
    )

    assert AuditEvent.objects.filter(request=request, kind="violation").count() == THREADS - 1
    assert_whole_chain(request, 2 + THREADS)
    assert all(check.ok for check in audit_chain_verify_all())
