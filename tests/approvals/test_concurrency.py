"""Races against the real database (SQLite in one suite, PostgreSQL in the other): threads, real connections."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, AuditEvent, Decision, Status
from approvals.services import action_request_decide, action_request_report_execution
from core.errors import TransitionRefused
from policies.selectors import policy_table_current
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory
from tests.helpers import run_at_once, submission_body, submit_as, to_approved

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_eight_reviewers_deciding_at_once_exactly_one_wins():
    reviewers = [reviewer_create(username=f"reviewer{i}", password="pw-long-enough") for i in range(THREADS)]
    request = PendingRequestFactory()

    results = run_at_once(
        lambda i: action_request_decide(
            request_id=request.id,
            reviewer=reviewers[i],
            approve=i % 2 == 0,
            reason="no" if i % 2 else "",
            reason_category="other" if i % 2 else "",
        )
    )

    winners = [r for r in results if r[0] == "ok"]
    losers = [r for r in results if r[0] == "error"]
    assert len(winners) == 1
    assert all(isinstance(exc, TransitionRefused) and exc.code == "already_decided" for _, exc in losers)
    assert Decision.objects.filter(request=request).count() == 1
    transitions = AuditEvent.objects.filter(request=request, from_status=Status.PENDING)
    assert transitions.count() == 1
    request.refresh_from_db()
    assert request.status == winners[0][1].request.status


@pytest.mark.django_db(transaction=True)
# Held for review (a transaction with a row lock), and allowed (on PostgreSQL, one query with no transaction).
@pytest.mark.parametrize("action_type", ["send_external_email", "search_web"])
def test_eight_concurrent_submissions_with_one_idempotency_key_create_one_request(agent_and_key, action_type):
    policies_load_defaults()
    policy_table_current()  # compiled and kept, as on a server that has answered before
    _, key = agent_and_key
    body = json.dumps(submission_body(action_type=action_type))

    def submit(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        response = client.post(
            "/api/v1/actions/", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="retry-me"
        )
        return response.status_code, response.json()["id"]

    results = run_at_once(submit)

    assert all(kind == "ok" for kind, _ in results), results
    statuses = sorted(code for _, (code, _) in results)
    ids = {request_id for _, (_, request_id) in results}
    assert statuses == [200] * (THREADS - 1) + [201]
    assert len(ids) == 1
    assert ActionRequest.objects.count() == 1
    assert AuditEvent.objects.filter(kind="submitted").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_policies")
def test_eight_reports_of_one_approval_at_once_record_exactly_one_execution(agent, alice):
    request = submit_as(agent)
    to_approved(agent, request, alice)
    request.refresh_from_db()
    report = {"approval_token": approval_token(request), "reported_params_hash": final_params_hash(request)}
    results = run_at_once(
        lambda _: action_request_report_execution(agent=agent, request_id=request.pk, outcome="succeeded", **report)
    )

    outcomes = ["executed" if kind == "ok" else getattr(exc, "code", repr(exc)) for kind, exc in results]
    assert sorted(outcomes) == ["already_reported"] * 7 + ["executed"]
    assert AuditEvent.objects.filter(request=request, kind="executed").count() == 1
    assert AuditEvent.objects.filter(request=request, kind="violation").count() == 7
