"""Triage at scale: filters with counts, search, sorts, keyset pages, batch decisions, claims."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ActionRequest, ActionTypeSchema, Agent, Decision, Status
from approvals.services import action_request_decide
from reviewers.models import Claim
from reviewers.services import claim_open, claim_release
from tests.factories import AgentFactory, PendingRequestFactory

pytestmark = pytest.mark.django_db


def cards_json(client, **params):
    response = client.get("/queue/cards.json", params)
    assert response.status_code == 200, response.content
    return response.json()


def seed_queue(n: int) -> list[ActionRequest]:
    """A varied queue: several agents and action types, a schema, past decisions and a claim."""
    agents = [Agent.objects.get_or_create(name=f"bot-{i}")[0] for i in range(3)]
    ActionTypeSchema.objects.get_or_create(
        action_type="type_1", defaults={"params_schema": {"type": "object", "required": ["to"]}}
    )
    requests = [
        PendingRequestFactory(
            agent=agents[i % 3],
            action_type=f"type_{i % 4}",
            risk=["low", "medium", "high", "critical"][i % 4],
            expires_at=timezone.now() + timedelta(minutes=10 + i),
        )
        for i in range(n)
    ]
    return requests


def test_the_queue_page_issues_the_same_queries_for_3_or_30_cards(client, alice, bob):
    client.force_login(alice)
    requests = seed_queue(3)
    action_request_decide(request_id=requests[0].id, reviewer=bob, approve=True)
    claim_open(request_id=requests[1].id, user=bob)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/queue/").status_code == 200
    assert few.captured_queries

    more = seed_queue(30)
    for request in more[:5]:
        action_request_decide(request_id=request.id, reviewer=bob, approve=False, reason="no", reason_category="unsafe")
    for request in more[5:10]:
        claim_open(request_id=request.id, user=bob)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/queue/")
    assert response.status_code == 200
    assert len(response.context["state"]["cards"]) == 27  # 2 + 25 still pending

    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"][:120] for q in many.captured_queries]


def test_cards_carry_key_params_schema_history_and_claims(client, alice, bob):
    client.force_login(alice)
    agent = AgentFactory(name="mailer")
    ActionTypeSchema.objects.create(
        action_type="send_external_email", params_schema={"type": "object", "required": ["to"]}
    )
    for outcome in ["approve", "approve", "reject"]:
        past = PendingRequestFactory(agent=agent)
        action_request_decide(
            request_id=past.id,
            reviewer=bob,
            approve=outcome == "approve",
            reason="" if outcome == "approve" else "wrong person",
            reason_category="" if outcome == "approve" else "wrong_recipient",
        )
    edited = PendingRequestFactory(agent=agent)
    action_request_decide(request_id=edited.id, reviewer=bob, approve=True, final_params={"to": "x@example.org"})
    pending = PendingRequestFactory(agent=agent, params={"body": "hi", "to": "a@example.org", "subject": "s"})
    claim_open(request_id=pending.id, user=bob)

    state = cards_json(client)

    [card] = state["cards"]
    assert card["id"] == str(pending.id)
    assert card["key_params"] == ["to"]
    assert card["params_schema"] == {"type": "object", "required": ["to"]}
    assert card["history"] == {"approved": 2, "edited": 1, "rejected": 1}
    assert state["claims"][str(pending.id)]["by"] == "bob"


def test_filters_search_and_counts_per_filter(client, alice):
    client.force_login(alice)
    seed_queue(8)
    PendingRequestFactory(action_type="type_0", summary="Refund for Zoë", agent=AgentFactory(name="zed"))

    everything = cards_json(client)
    assert everything["total"] == 9
    assert everything["counts"]["action_type"] == {"type_0": 3, "type_1": 2, "type_2": 2, "type_3": 2}

    narrowed = cards_json(client, action_type="type_0")
    assert narrowed["total"] == 3
    assert {c["action_type"] for c in narrowed["cards"]} == {"type_0"}
    # The action type facet still counts every type (so the reviewer can switch); the others narrow.
    assert narrowed["counts"]["action_type"]["type_1"] == 2
    assert sum(narrowed["counts"]["risk"].values()) == 3

    searched = cards_json(client, q="zoë")
    assert [c["summary"] for c in searched["cards"]] == ["Refund for Zoë"]
    assert cards_json(client, q="ZED")["total"] == 1  # agent names are searched too
    assert cards_json(client, agent="bot-1", risk="medium")["total"] == 1


def test_mine_means_routed_to_my_group_or_open_on_my_screen(client, alice):
    client.force_login(alice)
    finance = Group.objects.create(name="finance")
    alice.groups.add(finance)
    routed = PendingRequestFactory(reviewer_group=finance)
    claimed = PendingRequestFactory()
    PendingRequestFactory()
    claim_open(request_id=claimed.id, user=alice)

    mine = cards_json(client, mine="1")

    assert {c["id"] for c in mine["cards"]} == {str(routed.id), str(claimed.id)}
    assert cards_json(client, group="finance")["total"] == 1


def test_risk_sort_puts_critical_first_then_soonest_deadline(client, alice):
    client.force_login(alice)
    low_soon = PendingRequestFactory(risk="low", expires_at=timezone.now() + timedelta(minutes=1))
    critical_late = PendingRequestFactory(risk="critical", expires_at=timezone.now() + timedelta(hours=3))
    critical_soon = PendingRequestFactory(risk="critical", expires_at=timezone.now() + timedelta(hours=1))
    high = PendingRequestFactory(risk="high", expires_at=timezone.now() + timedelta(minutes=2))

    by_deadline = [c["id"] for c in cards_json(client)["cards"]]
    by_risk = [c["id"] for c in cards_json(client, sort="risk")["cards"]]

    assert by_deadline == [str(r.id) for r in (low_soon, high, critical_soon, critical_late)]
    assert by_risk == [str(r.id) for r in (critical_soon, critical_late, high, low_soon)]


@pytest.mark.parametrize("sort", ["deadline", "risk"])
def test_keyset_pages_neither_skip_nor_repeat_while_cards_come_and_go(client, alice, bob, settings, sort):
    settings.COUNTERSIGN_QUEUE_PAGE_SIZE = 5
    client.force_login(alice)
    initial = seed_queue(17)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = cards_json(client, sort=sort, **({"cursor": cursor} if cursor else {}))
        seen += [c["id"] for c in page["cards"]]
        pages += 1
        # Between fetches, new requests arrive and some already-seen ones are decided.
        PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=1), risk="critical")
        action_request_decide(request_id=seen[0 if pages == 1 else -1], reviewer=bob, approve=True)
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert len(seen) == len(set(seen)), "a card appeared on two pages"
    assert set(seen) == {str(r.id) for r in initial}, "a card that stayed pending was skipped"
    assert pages == 4


def test_a_cursor_the_queue_did_not_hand_out_is_a_clear_error(client, alice):
    client.force_login(alice)
    response = client.get("/queue/cards.json", {"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"

    deadline_cursor = None
    PendingRequestFactory.create_batch(3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.COUNTERSIGN_QUEUE_PAGE_SIZE", 1)
        deadline_cursor = cards_json(client)["next_cursor"]
    wrong_sort = client.get("/queue/cards.json", {"cursor": deadline_cursor, "sort": "risk"})
    assert wrong_sort.status_code == 422
    assert "another sort order" in wrong_sort.json()["error"]["message"]
    assert client.get("/queue/cards.json", {"sort": "newest"}).json()["error"]["code"] == "invalid_sort"


# --- batch ------------------------------------------------------------------------------------


def batch(client, **body):
    return client.post("/queue/batch-decide", data=json.dumps(body), content_type="application/json")


def test_batch_approve_decides_each_and_reports_the_ones_refused(client, alice, bob):
    client.force_login(alice)
    fresh = PendingRequestFactory.create_batch(3)
    taken = PendingRequestFactory()
    action_request_decide(request_id=taken.id, reviewer=bob, approve=True)
    changed = PendingRequestFactory()
    ActionRequest.objects.filter(pk=changed.pk).update(revision=2)

    response = batch(
        client,
        decision="approve",
        items=[{"id": str(r.id), "revision": 1} for r in [*fresh, taken, changed]],
    )

    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["results"]}
    assert all(results[str(r.id)]["ok"] for r in fresh)
    assert results[str(taken.id)]["code"] == "already_decided"
    assert "bob" in results[str(taken.id)]["message"]
    assert results[str(changed.id)]["ok"] is False
    assert set(ActionRequest.objects.filter(pk__in=[r.pk for r in fresh]).values_list("status", flat=True)) == {
        Status.APPROVED
    }
    assert ActionRequest.objects.get(pk=changed.pk).status == Status.PENDING


def test_a_batch_mixing_action_types_is_refused_whole(client, alice):
    client.force_login(alice)
    email = PendingRequestFactory(action_type="send_external_email")
    ticket = PendingRequestFactory(action_type="close_ticket")

    response = batch(client, decision="approve", items=[{"id": str(email.id)}, {"id": str(ticket.id)}])

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "mixed_action_types"
    assert not Decision.objects.exists()


def test_a_batch_reject_needs_a_category_and_a_reason_before_anything_is_decided(client, alice):
    client.force_login(alice)
    requests = PendingRequestFactory.create_batch(2)
    items = [{"id": str(r.id), "revision": 1} for r in requests]

    no_category = batch(client, decision="reject", items=items, reason="not today")
    assert no_category.status_code == 422
    assert no_category.json()["error"]["code"] == "reason_category_required"
    assert not Decision.objects.exists()

    ok = batch(client, decision="reject", items=items, reason="not today", reason_category="not_needed")
    assert ok.status_code == 200
    assert list(Decision.objects.values_list("reason_category", flat=True)) == ["not_needed", "not_needed"]


def test_a_batch_cannot_reach_requests_routed_to_another_group(client, alice):
    client.force_login(alice)
    finance = Group.objects.create(name="finance")
    hidden = PendingRequestFactory(reviewer_group=finance)

    response = batch(client, decision="approve", items=[{"id": str(hidden.id)}])

    assert response.json()["results"][0]["code"] == "not_found"
    assert ActionRequest.objects.get(pk=hidden.pk).status == Status.PENDING


def test_batch_rejects_malformed_bodies_with_codes(client, alice, charlie):
    client.force_login(alice)
    assert batch(client, decision="maybe", items=[{"id": "x"}]).json()["error"]["code"] == "invalid_decision"
    assert batch(client, decision="approve", items=[]).json()["error"]["code"] == "invalid_items"
    raw = client.post("/queue/batch-decide", data="{", content_type="application/json")
    assert raw.json()["error"]["code"] == "malformed_json"
    client.force_login(charlie)
    assert batch(client, decision="approve", items=[{"id": "x"}]).status_code == 403


# --- claims -----------------------------------------------------------------------------------


def test_a_claim_is_held_until_released_or_lapsed_and_never_stolen(alice, bob, settings):
    request = PendingRequestFactory()

    assert claim_open(request_id=request.id, user=alice)["by"] == "alice"
    assert claim_open(request_id=request.id, user=bob)["by"] == "alice"  # told who has it, not given it
    assert claim_release(request_id=request.id, user=bob) is False  # cannot drop someone else's
    assert Claim.objects.get(request=request).user == alice

    with time_machine.travel(timezone.now() + timedelta(seconds=settings.COUNTERSIGN_CLAIM_TIMEOUT_SECONDS + 1)):
        assert claim_open(request_id=request.id, user=bob)["by"] == "bob"  # alice's lapsed

    assert claim_release(request_id=request.id, user=bob) is True
    assert not Claim.objects.exists()


def test_decided_or_expired_requests_cannot_be_claimed(alice, bob):
    decided = PendingRequestFactory()
    action_request_decide(request_id=decided.id, reviewer=bob, approve=True)
    expired = PendingRequestFactory(expires_at=timezone.now() - timedelta(seconds=1))

    assert claim_open(request_id=decided.id, user=alice) is None
    assert claim_open(request_id=expired.id, user=alice) is None
    assert claim_open(request_id="not-a-uuid", user=alice) is None
