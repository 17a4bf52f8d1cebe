"""The kill switch: pausing an agent or an action type, what it does to requests in flight, and resuming."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.binding import approval_token, final_params_hash
from approvals.models import ActionRequest, Agent, AuditEvent, Pause, Status, WebhookDelivery
from approvals.services import (
    action_request_start_execution,
    action_type_pause,
    action_type_resume,
    agent_create,
    agent_pause,
    agent_resume,
)
from approvals.visibility import queue_channel_for
from core.errors import InvalidInput, NotFound, TransitionRefused
from tests.factories import UserFactory
from tests.helpers import approved, live_events, submission_body, submit_as, to_approved

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

HOOK = "https://hooks.example/agent"


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True)


def start(client, action):
    body = {"approval_token": action["approval_token"], "params_hash": action["final_params_hash"]}
    return client.post(
        f"/api/v1/actions/{action['id']}/execution/start", data=json.dumps(body), content_type="application/json"
    )


def report(client, action):
    body = {
        "status": "succeeded",
        "approval_token": action["approval_token"],
        "params_hash": action["final_params_hash"],
    }
    return client.post(
        f"/api/v1/actions/{action['id']}/execution", data=json.dumps(body), content_type="application/json"
    )


def post_action(client, **overrides):
    return client.post(
        "/api/v1/actions/", data=json.dumps(submission_body(**overrides)), content_type="application/json"
    )


# --- pausing an agent mid-flight ------------------------------------------------------------------------------


def test_pausing_an_agent_cancels_its_pending_requests_with_the_reason(agent, staff):
    first, second = submit_as(agent), submit_as(agent, params={"to": "other@example.org", "subject": "Hi"})

    outcome = agent_pause(agent_name=agent.name, reason="Emailing the wrong customers", by=staff)

    assert outcome.cancelled == 2
    for request in (first, second):
        request.refresh_from_db()
        assert request.status == Status.CANCELLED
        event = AuditEvent.objects.get(request=request, kind="cancelled")
        assert (event.actor_kind, event.actor_label) == ("staff", "sam")
        assert event.data == {"pause_id": outcome.pause.pk, "pause": "agent", "reason": "Emailing the wrong customers"}


def test_a_cancelled_pending_request_gets_its_webhook_outbox_row(agent, staff):
    Agent.objects.filter(pk=agent.pk).update(default_callback_url=HOOK)
    agent.refresh_from_db()
    request = submit_as(agent)

    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    delivery = WebhookDelivery.objects.get(request=request)
    assert delivery.event_type == "action.cancelled"
    assert delivery.payload["data"]["status"] == "cancelled"


def test_cancelled_cards_leave_the_open_queues_after_commit(agent, staff, django_capture_on_commit_callbacks):
    request = submit_as(agent)

    def pause() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    sent = live_events([queue_channel_for(request), "queue.everyone"], pause)

    removed = [(m["id"], m["status"], m["by"]) for m in sent if m["type"] == "queue.removed"]
    assert removed == [(str(request.pk), "cancelled", "sam")]
    paused = [m for m in sent if m["type"] == "queue.paused"]
    assert [(m["pause"]["target"], m["pause"]["reason"]) for m in paused] == [(agent.name, "Runaway")]


def test_pausing_an_agent_leaves_other_agents_requests_pending(agent, staff):
    other, _ = agent_create(name="other-bot")
    theirs = submit_as(other)

    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    theirs.refresh_from_db()
    assert theirs.status == Status.PENDING


def test_an_approval_not_yet_started_is_refused_at_start_with_approval_revoked(api, alice, agent, staff):
    action = approved(api, alice)

    outcome = agent_pause(agent_name=agent.name, reason="Runaway", by=staff)
    response = start(api, action)

    assert outcome.revoked == 1
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_revoked"
    assert not ActionRequest.objects.get(pk=action["id"]).execution_started_at


def test_revoking_an_approval_is_audited_with_the_pause(api, alice, agent, staff):
    action = approved(api, alice)

    outcome = agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    event = AuditEvent.objects.get(request_id=action["id"], kind="approval_revoked")
    assert (event.from_status, event.to_status, event.actor_label) == ("approved", "approved", "sam")
    assert event.data["pause_id"] == outcome.pause.pk


def test_a_revoked_approval_cannot_be_reported_as_run_either(api, alice, agent, staff):
    action = approved(api, alice)
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    response = report(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_revoked"
    assert ActionRequest.objects.get(pk=action["id"]).status == Status.APPROVED


def test_a_run_started_before_the_pause_is_still_reported(api, alice, agent, staff):
    action = approved(api, alice)
    assert start(api, action).status_code == 200

    outcome = agent_pause(agent_name=agent.name, reason="Runaway", by=staff)
    response = report(api, action)

    assert outcome.revoked == 0
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "executed"


# --- while paused ---------------------------------------------------------------------------------------------


def test_a_paused_agents_new_submission_is_blocked_with_agent_paused(api, agent, staff):
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    response = post_action(api)  # send_external_email: the policy table would hold it for review

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["mode"], body["reason"]) == ("blocked", "block", "agent_paused")
    request = ActionRequest.objects.get(pk=body["id"])
    assert (request.status, request.verdict_reason) == (Status.BLOCKED, "agent_paused")


def test_a_blocked_submission_keeps_the_pause_and_the_tables_verdict_in_its_audit_row(api, agent, staff):
    pause = agent_pause(agent_name=agent.name, reason="Runaway", by=staff).pause

    body = post_action(api).json()

    data = AuditEvent.objects.get(request_id=body["id"], kind="submitted").data
    assert data["verdict"]["reason"] == "agent_paused"
    assert data["table_verdict"]["mode"] == "approve"
    assert data["pause"] == {"id": pause.pk, "kind": "agent", "reason": "Runaway", "by": "sam"}


def test_an_auto_action_of_a_paused_agent_is_blocked_too(api, agent, staff):
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    body = post_action(api, action_type="search_web").json()

    assert (body["status"], body["reason"]) == ("blocked", "agent_paused")


def test_an_action_type_pause_blocks_that_type_for_every_agent(api, outsider_api, staff):
    action_type_pause(action_type="send_external_email", reason="Mail provider incident", by=staff)

    mine, theirs = post_action(api).json(), post_action(outsider_api).json()

    assert (mine["status"], mine["reason"]) == ("blocked", "action_type_paused")
    assert (theirs["status"], theirs["reason"]) == ("blocked", "action_type_paused")


def test_an_action_type_pause_leaves_other_action_types_alone(api, staff):
    action_type_pause(action_type="send_external_email", reason="Mail provider incident", by=staff)

    body = post_action(api, action_type="update_customer_record").json()

    assert body["status"] == "pending"


def test_an_action_type_pause_cancels_pending_requests_of_every_agent(agent, staff):
    other, _ = agent_create(name="other-bot")
    mine, theirs = submit_as(agent), submit_as(other)
    untouched = submit_as(agent, action_type="update_customer_record")

    outcome = action_type_pause(action_type="send_external_email", reason="Mail provider incident", by=staff)

    assert outcome.cancelled == 2
    assert ActionRequest.objects.get(pk=mine.pk).status == Status.CANCELLED
    assert ActionRequest.objects.get(pk=theirs.pk).status == Status.CANCELLED
    assert ActionRequest.objects.get(pk=untouched.pk).status == Status.PENDING


# --- resuming -------------------------------------------------------------------------------------------------


def test_resuming_restores_submissions_only(api, alice, agent, staff):
    pending = submit_as(agent)
    action = approved(api, alice)
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    pause = agent_resume(agent_name=agent.name, by=staff)

    assert (pause.resumed_by_label, pause.is_active) == ("sam", False)
    assert post_action(api).json()["status"] == "pending"
    assert ActionRequest.objects.get(pk=pending.pk).status == Status.CANCELLED
    refused = start(api, action)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "approval_revoked")


def test_an_approval_granted_after_the_resume_can_be_started(api, alice, agent, staff):
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)
    agent_resume(agent_name=agent.name, by=staff)

    action = approved(api, alice)

    assert start(api, action).status_code == 200


def test_resuming_an_action_type_restores_its_submissions(api, staff):
    action_type_pause(action_type="send_external_email", reason="Mail provider incident", by=staff)
    action_type_resume(action_type="send_external_email", by=staff)

    assert post_action(api).json()["status"] == "pending"


def test_the_pause_rows_are_the_record_of_who_paused_what_and_why(agent, staff):
    agent_pause(agent_name=agent.name, reason="First incident", by=staff)
    agent_resume(agent_name=agent.name, by_label="manage.py resume_agent")
    agent_pause(agent_name=agent.name, reason="Second incident", by=staff)

    rows = list(Pause.objects.filter(agent=agent).order_by("paused_at", "id"))
    assert [(p.reason, p.paused_by_label, p.resumed_by_label, p.is_active) for p in rows] == [
        ("First incident", "sam", "manage.py resume_agent", False),
        ("Second incident", "sam", "", True),
    ]


# --- refusals -------------------------------------------------------------------------------------------------


def test_a_reason_is_required_to_pause(agent, staff):
    with pytest.raises(InvalidInput) as refused:
        agent_pause(agent_name=agent.name, reason="   ", by=staff)

    assert refused.value.code == "reason_required"
    assert not Pause.objects.exists()


def test_pausing_a_paused_agent_again_is_refused_with_already_paused(agent, staff):
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    with pytest.raises(TransitionRefused) as refused:
        agent_pause(agent_name=agent.name, reason="Again", by=staff)

    assert refused.value.code == "already_paused"
    assert refused.value.details["pause"]["reason"] == "Runaway"


def test_resuming_an_agent_that_is_not_paused_is_refused_with_not_paused(agent, staff):
    with pytest.raises(NotFound) as refused:
        agent_resume(agent_name=agent.name, by=staff)

    assert refused.value.code == "not_paused"


def test_pausing_an_unknown_agent_is_refused(staff):
    with pytest.raises(NotFound) as refused:
        agent_pause(agent_name="nobody", reason="Runaway", by=staff)

    assert refused.value.code == "agent_not_found"


def test_an_action_type_pause_needs_an_exact_action_type_not_a_glob(staff):
    with pytest.raises(InvalidInput) as refused:
        action_type_pause(action_type="delete_*", reason="Runaway", by=staff)

    assert refused.value.code == "invalid_action_type"


def test_the_database_keeps_one_active_pause_per_agent(agent, staff):
    agent_pause(agent_name=agent.name, reason="Runaway", by=staff)

    with pytest.raises(IntegrityError), transaction.atomic():
        Pause.objects.create(agent=agent, reason="Twice", paused_by_label="x", paused_at=timezone.now())


def test_an_approved_request_of_another_agent_can_still_be_started(api, outsider_api, alice, staff):
    mine = approved(api, alice)
    other = Agent.objects.get(name="someone-elses-bot")
    theirs = submit_as(other)
    to_approved(other, theirs, alice)

    agent_pause(agent_name="support-bot", reason="Runaway", by=staff)

    theirs.refresh_from_db()
    started = action_request_start_execution(
        agent=other,
        request_id=theirs.pk,
        approval_token=approval_token(theirs),
        params_hash=final_params_hash(theirs),
    )
    assert started.execution_started_at is not None
    assert start(api, mine).status_code == 409
