"""Quorum, separation of duties, group routing, agent scopes, escalation on expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import ActionRequest, AuditEvent, Decision, Status, Vote
from approvals.selectors import QueueFilters, queue_page
from approvals.services import action_request_decide, action_requests_expire_due, agent_create
from core.errors import InvalidInput, NotFound, PermissionRefused, TransitionRefused
from policies.services import policy_create
from reviewers.services import reviewer_create
from tests.helpers import PASSWORD, run_at_once, submit

pytestmark = pytest.mark.django_db


def policy(admin_user, **data):
    data.setdefault("action_pattern", "send_external_email")
    data.setdefault("mode", "approve")
    return policy_create(actor=admin_user, data=data, change_note="test setup")


# --- quorum -------------------------------------------------------------------------------------


def test_two_of_n_needs_two_distinct_approvals(api, admin_user, alice, bob):
    policy(admin_user, required_approvals=2)
    request_id = submit(api)["id"]

    first = action_request_decide(request_id=request_id, reviewer=alice, approve=True)
    assert isinstance(first, Vote)
    assert ActionRequest.objects.get(pk=request_id).status == Status.PENDING

    decision = action_request_decide(request_id=request_id, reviewer=bob, approve=True)

    assert isinstance(decision, Decision)
    assert ActionRequest.objects.get(pk=request_id).status == Status.APPROVED
    approved = AuditEvent.objects.get(request_id=request_id, kind="approved")
    assert [v["reviewer"] for v in approved.data["votes"]] == ["alice", "bob"]


def test_a_rejection_ends_a_quorum(api, admin_user, alice, bob):
    policy(admin_user, required_approvals=3)
    request_id = submit(api)["id"]
    action_request_decide(request_id=request_id, reviewer=alice, approve=True)

    action_request_decide(
        request_id=request_id, reviewer=bob, approve=False, reason_category="wrong_recipient", reason="Wrong customer"
    )

    request = ActionRequest.objects.get(pk=request_id)
    assert request.status == Status.REJECTED
    assert request.decision.reason == "Wrong customer"


def test_the_same_reviewer_cannot_vote_twice(api, admin_user, alice):
    policy(admin_user, required_approvals=2)
    request_id = submit(api)["id"]
    action_request_decide(request_id=request_id, reviewer=alice, approve=True)

    with pytest.raises(TransitionRefused) as caught:
        action_request_decide(request_id=request_id, reviewer=alice, approve=True)

    assert caught.value.code == "already_voted"
    assert Vote.objects.filter(request_id=request_id).count() == 1
    assert ActionRequest.objects.get(pk=request_id).status == Status.PENDING


def test_quorum_requests_cannot_be_edited(api, admin_user, alice):
    policy(admin_user, required_approvals=2)
    request_id = submit(api)["id"]

    with pytest.raises(InvalidInput, match="cannot be edited"):
        action_request_decide(request_id=request_id, reviewer=alice, approve=True, final_params={"to": "x@y.z"})


def test_owner_of_the_agent_cannot_approve(admin_user, alice, bob):
    policy(admin_user)
    _, key = agent_create(name="alices-bot", owner=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    request_id = submit(client)["id"]

    with pytest.raises(PermissionRefused) as caught:
        action_request_decide(request_id=request_id, reviewer=alice, approve=True)
    action_request_decide(request_id=request_id, reviewer=bob, approve=True)

    assert caught.value.code == "owner_cannot_approve"
    assert ActionRequest.objects.get(pk=request_id).decision.reviewer == bob


def test_owner_cannot_approve_through_the_queue_endpoint(admin_user, alice, client):
    policy(admin_user)
    _, key = agent_create(name="alices-bot", owner=alice)
    agent_client = APIClient()
    agent_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    request_id = submit(agent_client)["id"]
    client.force_login(alice)

    response = client.post(
        f"/queue/requests/{request_id}/decide", {"decision": "approve"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "owner_cannot_approve"


@pytest.mark.django_db(transaction=True)
def test_concurrent_final_votes_make_exactly_one_transition(admin_user):
    policy(admin_user, required_approvals=2)
    _, key = agent_create(name="racer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    request_id = submit(client)["id"]
    reviewers = [reviewer_create(username=f"r{i}", password=PASSWORD) for i in range(6)]

    results = run_at_once(
        lambda i: action_request_decide(request_id=request_id, reviewer=reviewers[i], approve=True), 6
    )

    kinds = sorted(type(r[1]).__name__ if r[0] == "ok" else r[1].code for r in results)
    assert kinds.count("Decision") == 1
    assert kinds.count("Vote") == 1
    assert kinds.count("already_decided") == 4
    assert Decision.objects.filter(request_id=request_id).count() == 1
    assert (
        AuditEvent.objects.filter(request_id=request_id, from_status=Status.PENDING, to_status=Status.APPROVED).count()
        == 1
    )


def queue_cards(*, user):
    return queue_page(user=user, filters=QueueFilters(), counts=False).cards


# --- routing ------------------------------------------------------------------------------------


def test_routed_request_is_only_in_its_groups_queue(api, admin_user, alice, finance):
    policy(admin_user, reviewer_group="finance")
    request_id = submit(api)["id"]

    assert [c["id"] for c in queue_cards(user=finance)] == [request_id]
    assert queue_cards(user=alice) == []


def test_reviewer_outside_the_group_cannot_decide(api, admin_user, alice, finance):
    policy(admin_user, reviewer_group="finance")
    request_id = submit(api)["id"]

    with pytest.raises(NotFound):
        action_request_decide(request_id=request_id, reviewer=alice, approve=True)
    action_request_decide(request_id=request_id, reviewer=finance, approve=True)

    assert ActionRequest.objects.get(pk=request_id).status == Status.APPROVED


def test_queue_page_and_decide_endpoint_hide_routed_requests_from_outsiders(api, admin_user, alice, client):
    reviewer_create(username="fiona", password=PASSWORD, group_name="finance")
    policy(admin_user, reviewer_group="finance")
    request_id = submit(api)["id"]
    client.force_login(alice)

    cards = client.get("/queue/cards.json").json()["cards"]
    response = client.post(
        f"/queue/requests/{request_id}/decide", {"decision": "approve"}, content_type="application/json"
    )

    assert request_id not in [c["id"] for c in cards]
    assert response.status_code == 404


# --- scopes -------------------------------------------------------------------------------------


def test_action_outside_the_agents_scope_is_blocked(agent, api, admin_user):
    policy(admin_user, action_pattern="delete_any_data", mode="auto")
    agent.action_scopes = ["send_*", "search_web"]
    agent.save()

    body = submit(api, action_type="delete_any_data")

    assert body["status"] == "blocked"
    assert body["reason"].startswith("out_of_scope")


def test_action_outside_the_keys_scope_is_blocked(agent, admin_user):
    policy(admin_user, action_pattern="search_web", mode="auto")
    from approvals.services import agent_key_issue

    raw = agent_key_issue(agent=agent)
    agent.keys.filter(prefix=raw[:10]).update(action_scopes=["summarize_document"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert submit(client, action_type="search_web")["reason"].startswith("out_of_scope")
    assert submit(client, action_type="summarize_document")["status"] == "pending"  # in scope; default applies


def test_in_scope_action_follows_the_table(agent, api, admin_user):
    policy(admin_user, action_pattern="search_web", mode="auto")
    agent.action_scopes = ["search_*"]
    agent.save()

    assert submit(api, action_type="search_web")["status"] == "allowed"


def test_agent_tags_reach_conditions(agent, api, admin_user):
    policy(admin_user, action_pattern="search_web", mode="auto", condition='"trusted" in agent.tags')
    assert submit(api, action_type="search_web")["status"] == "pending"

    agent.tags = ["trusted"]
    agent.save()

    assert submit(api, action_type="search_web")["status"] == "allowed"


def test_runtime_condition_error_is_returned_to_the_agent(api, admin_user):
    policy(admin_user, mode="auto", condition="params.amount < 100")

    body = submit(api)

    assert body["status"] == "pending"
    assert "condition error" in body["reason"]
    assert "fails closed" in body["reason"]


# --- expiry -------------------------------------------------------------------------------------


def test_expiry_escalates_once_then_expires(api, admin_user, alice, finance):
    managers = Group.objects.create(name="managers")
    carol = reviewer_create(username="carol", password=PASSWORD, group_name="managers")
    policy(
        admin_user,
        reviewer_group="finance",
        on_expiry="escalate",
        escalation_group=managers.name,
        pending_ttl_seconds=60,
    )
    request_id = submit(api)["id"]

    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        action_requests_expire_due()
        request = ActionRequest.objects.get(pk=request_id)
        assert request.status == Status.PENDING
        assert request.reviewer_group == managers
        assert request.expires_at == timezone.now() + timedelta(seconds=60)
        assert [c["id"] for c in queue_cards(user=carol)] == [request_id]
        assert queue_cards(user=finance) == []
        assert AuditEvent.objects.filter(request_id=request_id, kind="escalated").count() == 1

    with time_machine.travel(timezone.now() + timedelta(seconds=122), tick=False):
        action_requests_expire_due()
        assert ActionRequest.objects.get(pk=request_id).status == Status.EXPIRED


def test_expiry_rejects_by_default(api, admin_user):
    policy(admin_user, pending_ttl_seconds=60)
    request_id = submit(api)["id"]

    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        action_requests_expire_due()

    assert ActionRequest.objects.get(pk=request_id).status == Status.EXPIRED
