"""The reviewer API (/api/v1/review/): the same queue, decisions and history as the page, through a token."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group

from approvals.models import ActionRequest, Decision, Status, Vote
from approvals.services import action_request_decide
from evaluation.records import decision_record
from reviewers.models import Claim
from reviewers.services import reviewer_create
from tests.factories import AgentFactory, PendingRequestFactory
from tests.helpers import run_at_once

from .review_api import post_json, token_client

pytestmark = pytest.mark.django_db


def decide(client, request, **body):
    body = {"decision": "approve", "revision": request.revision, **body}
    return post_json(client, f"/api/v1/review/requests/{request.id}/decide", body)


def test_the_queue_matches_cards_json_filter_for_filter_and_page_for_page(client, alice, settings):
    settings.COUNTERSIGN_QUEUE_PAGE_SIZE = 2
    for i in range(5):
        PendingRequestFactory(action_type=f"type_{i % 2}", risk=["low", "critical"][i % 2])
    client.force_login(alice)
    api = token_client(alice)

    for params in ({}, {"action_type": "type_1"}, {"sort": "risk"}, {"risk": "low", "q": "customer"}):
        page, cursor = client.get("/queue/cards.json", params).json(), None
        while True:
            from_api = api.get("/api/v1/review/queue", {**params, **({"cursor": cursor} if cursor else {})}).json()
            assert from_api["cards"] == page["cards"]
            assert (from_api["total"], from_api["counts"]) == (page["total"], page["counts"])
            cursor = page["next_cursor"]
            assert from_api["next_cursor"] == cursor
            if not cursor:
                break
            page = client.get("/queue/cards.json", {**params, "cursor": cursor}).json()


def test_a_bad_queue_filter_is_a_422_in_the_error_shape(alice):
    response = token_client(alice).get("/api/v1/review/queue", {"sort": "loudest"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_sort"


def test_one_request_is_its_card_with_the_revision_status_and_claim(alice):
    request = PendingRequestFactory()

    body = token_client(alice).get(f"/api/v1/review/requests/{request.id}").json()

    assert (body["id"], body["revision"], body["status"], body["claim"]) == (
        str(request.id),
        request.revision,
        "pending",
        None,
    )
    assert body["params"] == request.params


def test_approving_decides_the_request_and_says_so(alice):
    request = PendingRequestFactory()

    response = decide(token_client(alice), request)

    assert response.status_code == 200, response.content
    assert response.json() | {"id": None} == {
        "id": None,
        "result": "decided",
        "status": "approved",
        "revision": request.revision + 1,
        "edited": False,
        "required_approvals": 1,
        "approved_by": [],
    }
    decision = Decision.objects.get(request=request)
    assert (decision.reviewer, decision.surface) == (alice, "api")


def test_approving_with_edited_params_records_the_edit(alice):
    request = PendingRequestFactory()

    response = decide(token_client(alice), request, params={"to": "other@example.org", "subject": "Refund"})

    assert response.json()["edited"] is True
    request.refresh_from_db()
    assert request.final_params == {"to": "other@example.org", "subject": "Refund"}


def test_rejecting_needs_a_category_and_records_the_reason(alice):
    request = PendingRequestFactory()
    client = token_client(alice)

    missing = decide(client, request, decision="reject", reason="Wrong customer")
    rejected = decide(client, request, decision="reject", reason="Wrong customer", reason_category="wrong_recipient")

    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "reason_category_required")
    assert rejected.json()["status"] == "rejected"
    assert Decision.objects.get(request=request).reason_category == "wrong_recipient"


def test_the_revision_seen_is_required(alice):
    request = PendingRequestFactory()

    response = post_json(token_client(alice), f"/api/v1/review/requests/{request.id}/decide", {"decision": "approve"})

    assert response.status_code == 422
    assert "revision" in response.json()["error"]["details"]["fields"]


def test_a_reviewer_outside_the_requests_group_gets_404_and_nothing_changes(alice, finance):
    request = PendingRequestFactory(reviewer_group=Group.objects.get(name="finance"))
    client = token_client(alice)

    assert client.get(f"/api/v1/review/requests/{request.id}").status_code == 404
    response = decide(client, request)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert decide(token_client(finance), request).status_code == 200


def test_the_agents_owner_cannot_approve_its_request(alice):
    request = PendingRequestFactory(agent=AgentFactory(owner=alice))

    response = decide(token_client(alice), request)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "owner_cannot_approve")
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_a_quorum_vote_through_the_api_waits_for_the_next_approval(alice, bob):
    request = PendingRequestFactory(required_approvals=2)

    first = decide(token_client(alice), request).json()
    second = decide(token_client(bob), request).json()

    assert (first["result"], first["status"], first["approved_by"]) == ("vote_recorded", "pending", ["alice"])
    assert (second["result"], second["status"]) == ("decided", "approved")
    assert set(Vote.objects.filter(request=request).values_list("surface", flat=True)) == {"api"}


def test_a_stale_revision_is_refused_with_request_changed(alice):
    request = PendingRequestFactory()
    ActionRequest.objects.filter(pk=request.pk).update(
        revision=request.revision + 1
    )  # escalated since the card was read

    response = decide(token_client(alice), request)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "request_changed")


def test_an_expired_request_is_refused(alice):
    request = PendingRequestFactory()
    client = token_client(alice, lifetime_days=1)

    with time_machine.travel(request.expires_at + timedelta(seconds=1)):
        response = decide(client, request)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "request_expired")


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_deciding_at_once_through_the_api_make_one_decision():
    reviewers = [reviewer_create(username=f"reviewer{i}", password="pw-long-enough") for i in range(2)]
    clients = [token_client(reviewer) for reviewer in reviewers]
    request = PendingRequestFactory()

    results = run_at_once(lambda i: decide(clients[i], request).status_code, count=2)

    assert sorted(status for _, status in results) == [200, 409]
    assert Decision.objects.filter(request=request).count() == 1


def test_batch_decides_each_and_reports_the_refused_one(alice, bob):
    first, second = PendingRequestFactory(), PendingRequestFactory()
    action_request_decide(request_id=second.id, reviewer=bob, approve=True)
    items = [{"id": str(first.id), "revision": first.revision}, {"id": str(second.id), "revision": second.revision}]

    response = post_json(token_client(alice), "/api/v1/review/batch", {"decision": "approve", "items": items})

    assert response.status_code == 200
    assert [(r["ok"], r.get("code")) for r in response.json()["results"]] == [(True, None), (False, "already_decided")]
    assert Decision.objects.get(request=first).surface == "api"


def test_claim_and_release_through_the_api(alice, bob):
    request = PendingRequestFactory()
    path = f"/api/v1/review/requests/{request.id}/claim"

    claimed = token_client(alice).post(path).json()
    by_bob = token_client(bob).post(path).json()
    released = token_client(alice).delete(path).json()

    assert (claimed["claim"]["by"], claimed["yours"]) == ("alice", True)
    assert (by_bob["claim"]["by"], by_bob["yours"]) == ("alice", False)
    assert released == {"released": True}
    assert not Claim.objects.exists()


def test_claiming_a_request_of_another_group_is_404(alice, finance):
    request = PendingRequestFactory(reviewer_group=Group.objects.get(name="finance"))

    assert token_client(alice).post(f"/api/v1/review/requests/{request.id}/claim").status_code == 404
    assert not Claim.objects.exists()


def test_history_lists_what_the_reviewer_may_see_with_filters_and_keyset_pages(client, alice, finance):
    for i in range(3):
        action_request_decide(request_id=PendingRequestFactory(action_type=f"t{i}").id, reviewer=alice, approve=True)
    hidden = PendingRequestFactory(reviewer_group=Group.objects.get(name="finance"))
    action_request_decide(request_id=hidden.id, reviewer=finance, approve=True)
    api = token_client(alice)

    first = api.get("/api/v1/review/history", {"mine": "1"})
    rows = first.json()["rows"]
    filtered = api.get("/api/v1/review/history", {"action_type": "t1"}).json()["rows"]

    assert first.status_code == 200
    assert str(hidden.id) not in {row["id"] for row in rows}
    assert [row["action_type"] for row in filtered] == ["t1"]
    assert rows[0]["surface"] == "web" and rows[0]["reviewer"] == "alice"


def test_history_pages_neither_skip_nor_repeat(alice, monkeypatch):
    monkeypatch.setattr("reviewers.selectors.HISTORY_PAGE_SIZE", 2)
    ids = []
    for _ in range(5):
        request = PendingRequestFactory()
        action_request_decide(request_id=request.id, reviewer=alice, approve=True)
        ids.append(str(request.id))
    api = token_client(alice)

    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/review/history", {"cursor": cursor} if cursor else {}).json()
        seen += [row["id"] for row in page["rows"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_the_decision_records_where_it_was_made(client, alice):
    from_web, from_api = PendingRequestFactory(), PendingRequestFactory()
    client.force_login(alice)

    client.post(
        f"/queue/requests/{from_web.id}/decide",
        {"decision": "approve", "revision": from_web.revision},
        "application/json",
    )
    decide(token_client(alice), from_api)

    web, api = Decision.objects.get(request=from_web), Decision.objects.get(request=from_api)
    assert (web.surface, api.surface) == ("web", "api")
    assert (
        decision_record(Decision.objects.select_related("request__agent").get(pk=api.pk))["decision"]["surface"]
        == "api"
    )


def test_the_openapi_schema_documents_every_review_endpoint_and_its_errors(client):
    schema = client.get("/api/schema/?format=json").json()

    paths = {path: ops for path, ops in schema["paths"].items() if path.startswith("/api/v1/review/")}
    assert set(paths) == {
        "/api/v1/review/queue",
        "/api/v1/review/requests/{request_id}",
        "/api/v1/review/requests/{request_id}/decide",
        "/api/v1/review/requests/{request_id}/claim",
        "/api/v1/review/batch",
        "/api/v1/review/history",
        "/api/v1/review/afterwards",
        "/api/v1/review/afterwards/{request_id}/label",
    }
    decide_op = paths["/api/v1/review/requests/{request_id}/decide"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(decide_op["responses"])
    assert {"ReviewerToken": []} in decide_op["security"]
