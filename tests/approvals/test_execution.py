from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, AuditEvent, Status, WebhookDelivery
from approvals.services import action_request_decide, action_requests_expire_due
from tests.helpers import (
    approved,
    reject,
    report_execution,
    submission_body,
    submit,
    submit_as,
    to_approved,
    to_cancelled,
    to_executed,
    to_expired,
    to_rejected,
)

pytestmark = pytest.mark.django_db


def report(client, action, **body):
    payload = {
        "status": "succeeded",
        "approval_token": action["approval_token"],
        "params_hash": action["final_params_hash"],
    }
    payload.update(body)
    payload = {k: v for k, v in payload.items() if v is not ...}
    return client.post(
        f"/api/v1/actions/{action['id']}/execution", data=json.dumps(payload), content_type="application/json"
    )


def violations(action_id):
    return list(AuditEvent.objects.filter(request_id=action_id, kind="violation").values_list("data", flat=True))


def sha256_canonical(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_approval_response_carries_token_and_hash_of_final_params(api, alice, default_policies):
    action = approved(api, alice)

    assert action["status"] == "approved"
    assert action["approval_token"].startswith("cat_")
    assert action["final_params_hash"] == sha256_canonical(submission_body()["params"])


def test_edited_approval_hashes_the_edited_params(api, alice, default_policies):
    edited = {"to": "customer@example.org", "subject": "Your refund", "body": "Refund sent today."}

    action = approved(api, alice, final_params=edited)

    assert action["final_params"] == edited
    assert action["final_params_hash"] == sha256_canonical(edited)


def test_agent_reports_approved_action_executed(api, alice, default_policies):
    action = approved(api, alice)

    response = report(api, action, result={"message_id": "m-1"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "executed"
    assert body["execution"]["status"] == "succeeded"
    assert body["execution"]["result"] == {"message_id": "m-1"}
    assert body["approval_token"] is None
    assert AuditEvent.objects.filter(request_id=action["id"], kind="executed", to_status="executed").exists()


def test_failed_execution_is_recorded_as_executed_with_failed_outcome(api, alice, default_policies):
    action = approved(api, alice)

    body = report(api, action, status="failed", result={"error": "SMTP 550"}).json()

    assert body["status"] == "executed"
    assert body["execution"]["status"] == "failed"


def test_executed_report_queues_a_webhook(api, alice, default_policies):
    action = approved(api, alice, callback_url="http://127.0.0.1:9/hook")

    report(api, action)

    delivery = WebhookDelivery.objects.get(request_id=action["id"], event_type="action.executed")
    assert delivery.payload["data"]["status"] == "executed"


def test_second_report_is_refused_as_already_reported(api, alice, default_policies):
    action = approved(api, alice)
    assert report(api, action).status_code == 200

    response = report(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_reported"
    assert [v["violation"] for v in violations(action["id"])] == ["already_reported"]


def test_report_after_approval_expires_is_refused_and_the_approval_lapses(api, alice, default_policies):
    action = approved(api, alice)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        response = report(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_expired"
    assert ActionRequest.objects.get(pk=action["id"]).status == "lapsed"
    assert [v["violation"] for v in violations(action["id"])] == ["approval_expired"]


def test_report_with_another_params_hash_is_refused(api, alice, default_policies):
    edited = {"to": "customer@example.org", "subject": "Your refund", "body": "Refund sent today."}
    action = approved(api, alice, final_params=edited)

    # The agent ran its original params, not the ones the reviewer approved.
    response = report(api, action, params_hash=sha256_canonical(submission_body()["params"]))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "params_mismatch"
    assert ActionRequest.objects.get(pk=action["id"]).status == "approved"
    assert [v["violation"] for v in violations(action["id"])] == ["params_mismatch"]


def test_report_without_params_hash_for_approved_request_is_refused(api, alice, default_policies):
    action = approved(api, alice)

    response = report(api, action, params_hash=...)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "params_mismatch"


def test_report_for_pending_request_is_refused_as_not_approved(api, default_policies):
    action = submit(api)

    response = report(api, {**action, "approval_token": "cat_guess", "final_params_hash": "0" * 64})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_approved"
    assert ActionRequest.objects.get(pk=action["id"]).status == "pending"
    assert [v["violation"] for v in violations(action["id"])] == ["not_approved"]


def test_report_for_rejected_request_is_refused_as_not_approved(api, alice, default_policies):
    action = submit(api)
    reject(action["id"], alice)

    response = report(api, {**action, "approval_token": None, "final_params_hash": None})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_approved"


def test_report_for_blocked_request_is_refused_as_not_approved(api, default_policies):
    action = submit(api, action_type="legal_advice")
    assert action["status"] == "blocked"

    response = report(api, action)

    assert response.json()["error"]["code"] == "not_approved"


def test_report_with_wrong_token_is_refused(api, alice, default_policies):
    action = approved(api, alice)

    response = report(api, action, approval_token="cat_" + "0" * 64)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_approval_token"
    assert ActionRequest.objects.get(pk=action["id"]).status == "approved"
    assert [v["violation"] for v in violations(action["id"])] == ["invalid_approval_token"]


def test_report_without_token_for_approved_request_is_refused(api, alice, default_policies):
    action = approved(api, alice)

    response = report(api, action, approval_token=...)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_approval_token"


def test_token_of_another_approval_does_not_fit(api, alice, default_policies):
    first = approved(api, alice)
    second = approved(api, alice, summary="Another email")

    response = report(api, second, approval_token=first["approval_token"])

    assert response.json()["error"]["code"] == "invalid_approval_token"


def test_allowed_request_accepts_one_report_without_token(api, default_policies):
    action = submit(api, action_type="search_web", params={"q": "refund policy"})
    assert action["status"] == "allowed"

    first = report(api, action, approval_token=..., params_hash=...)
    second = report(api, action, approval_token=..., params_hash=...)

    assert first.status_code == 200
    assert first.json()["status"] == "executed"
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_reported"


def test_allowed_request_report_with_other_params_hash_is_refused(api, default_policies):
    action = submit(api, action_type="search_web", params={"q": "refund policy"})

    response = report(api, action, approval_token=..., params_hash="f" * 64)

    assert response.json()["error"]["code"] == "params_mismatch"


def test_outsider_cannot_report_execution(api, outsider_api, alice, default_policies):
    action = approved(api, alice)

    response = report(outsider_api, action)

    assert response.status_code == 404
    assert ActionRequest.objects.get(pk=action["id"]).status == "approved"


def test_unknown_execution_status_is_a_validation_error(api, alice, default_policies):
    action = approved(api, alice)

    response = report(api, action, status="done")

    assert response.status_code == 422
    assert ActionRequest.objects.get(pk=action["id"]).status == "approved"


# --- every refused execution report is a violation in the audit trail ---------------------------


def lapsed_by_the_sweep(agent, reviewer):
    request = submit_as(agent)
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)
    request.refresh_from_db()
    token, digest = approval_token(request), final_params_hash(request)
    ActionRequest.objects.filter(pk=request.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    action_requests_expire_due()
    assert ActionRequest.objects.get(pk=request.pk).status == Status.LAPSED
    return request, {"approval_token": token, "reported_params_hash": digest}


def expired_before_a_decision(agent, reviewer):
    request = submit_as(agent)
    to_expired(agent, request, reviewer)
    return request, {}


def rejected(agent, reviewer):
    request = submit_as(agent)
    to_rejected(agent, request, reviewer)
    return request, {}


def cancelled(agent, reviewer):
    request = submit_as(agent)
    to_cancelled(agent, request, reviewer)
    return request, {}


def blocked(agent, reviewer):
    request = submit_as(agent, action_type="legal_advice")
    assert request.status == Status.BLOCKED
    return request, {}


def allowed_and_already_reported(agent, reviewer):
    request = submit_as(agent, action_type="search_web")
    assert request.status == Status.ALLOWED
    report_execution(agent, request)
    return request, {"approval_token": None, "reported_params_hash": None}


def approved_and_already_reported(agent, reviewer):
    request = submit_as(agent)
    to_executed(agent, request, reviewer)
    request.refresh_from_db()
    return request, {"reported_params_hash": final_params_hash(request)}


def approved_but_other_params_ran(agent, reviewer):
    request = submit_as(agent)
    to_approved(agent, request, reviewer)
    return request, {"reported_params_hash": "0" * 64}


@pytest.mark.usefixtures("default_policies")
@pytest.mark.parametrize(
    ("arrange", "code", "status_after"),
    [
        (lapsed_by_the_sweep, "approval_expired", "lapsed"),
        (expired_before_a_decision, "not_approved", "expired"),
        (rejected, "not_approved", "rejected"),
        (cancelled, "not_approved", "cancelled"),
        (blocked, "not_approved", "blocked"),
        (allowed_and_already_reported, "already_reported", "executed"),
        (approved_and_already_reported, "already_reported", "executed"),
        (approved_but_other_params_ran, "params_mismatch", "approved"),
    ],
    ids=lambda value: value.__name__ if callable(value) else None,
)
def test_every_refused_execution_report_is_kept_as_a_violation(arrange, code, status_after, agent, alice):
    request, report = arrange(agent, alice)
    request.refresh_from_db()
    executed_at = request.executed_at

    with pytest.raises(Exception) as refused:
        report_execution(agent, request, outcome="failed", **report)

    assert getattr(refused.value, "code", None) == code
    request.refresh_from_db()
    assert (request.status, request.executed_at) == (status_after, executed_at)
    [violation] = AuditEvent.objects.filter(request=request, kind="violation")
    assert violation.data["violation"] == code
    assert violation.data["reported_outcome"] == "failed"
    assert (violation.actor_kind, violation.actor_label) == ("agent", agent.name)
