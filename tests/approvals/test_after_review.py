"""Review afterwards (issue 15): log requests and a deterministic sample of auto ones are labelled later."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import ActionRequest, AfterReview, AfterReviewLabel, AuditEvent
from approvals.services import (
    Submission,
    action_request_label,
    action_request_submit,
    after_review_sampled,
    after_reviews_lapse_due,
)
from core.errors import InvalidInput, NotFound, TransitionRefused
from policies.selectors import policy_table_cache_clear
from reviewers.services import reviewer_create
from tests.factories import PolicyFactory
from tests.helpers import run_at_once

pytestmark = pytest.mark.usefixtures("default_policies")


def submit(agent, action_type: str, n: int = 0) -> ActionRequest:
    return action_request_submit(
        agent=agent,
        submission=Submission(action_type=action_type, params={"n": n}, summary=f"<b>{action_type}</b>", evidence=[]),
    ).request


@pytest.fixture
def logged(db):
    """A log policy (every request reviewed afterwards) and an auto one sampling 30%."""
    PolicyFactory(action_pattern="update_crm", mode="log")
    PolicyFactory(action_pattern="lookup_order", mode="auto", sample_rate=0.3)
    policy_table_cache_clear()


def test_the_sample_is_fixed_by_the_request_id_and_within_tolerance_over_10000_requests():
    ids = [uuid.UUID(int=n * 104729 + 7) for n in range(10_000)]
    sampled = [after_review_sampled(request_id, 0.1) for request_id in ids]
    assert sampled == [after_review_sampled(request_id, 0.1) for request_id in ids]
    # 1,000 expected; 3 standard deviations (30) either side.
    assert 910 <= sum(sampled) <= 1090
    assert not any(after_review_sampled(request_id, 0.0) for request_id in ids)
    assert all(after_review_sampled(request_id, 1.0) for request_id in ids)


def test_every_log_request_and_only_the_sampled_auto_ones_are_due(agent, logged):
    logs = [submit(agent, "update_crm", n) for n in range(5)]
    autos = [submit(agent, "lookup_order", n) for n in range(60)]
    assert {r.after_review for r in logs} == {AfterReview.DUE}
    for request in autos:
        expected = AfterReview.DUE if after_review_sampled(request.pk, 0.3) else AfterReview.NONE
        assert request.after_review == expected
    assert 5 < sum(r.after_review == AfterReview.DUE for r in autos) < 35
    assert submit(agent, "send_external_email").after_review == AfterReview.NONE  # a human decides it anyway


def test_a_label_is_kept_audited_and_the_request_leaves_the_queue(agent, alice, logged):
    request = submit(agent, "update_crm")
    label = action_request_label(
        request_id=request.pk,
        reviewer=alice,
        label="should_have_asked",
        reason_category="wrong_recipient",
        note="the CRM record of another customer",
    )
    request.refresh_from_db()
    assert request.after_review == AfterReview.LABELLED
    assert (label.label, label.reviewer_username, label.reason_category) == (
        "should_have_asked",
        "alice",
        "wrong_recipient",
    )
    event = AuditEvent.objects.get(request=request, kind="labelled")
    assert event.data["label"] == "should_have_asked"
    with pytest.raises(TransitionRefused) as again:
        action_request_label(request_id=request.pk, reviewer=alice, label="fine")
    assert again.value.code == "already_labelled"


def test_a_flag_needs_a_reason_category_and_an_unknown_label_is_refused(agent, alice, logged):
    request = submit(agent, "update_crm")
    with pytest.raises(InvalidInput, match="reason category"):
        action_request_label(request_id=request.pk, reviewer=alice, label="should_have_blocked")
    with pytest.raises(InvalidInput, match="label must be one of"):
        action_request_label(request_id=request.pk, reviewer=alice, label="meh")
    assert AfterReviewLabel.objects.count() == 0


def test_a_request_not_due_or_not_visible_cannot_be_labelled(agent, alice, logged):
    not_sampled = submit(agent, "search_web")
    with pytest.raises(TransitionRefused) as refused:
        action_request_label(request_id=not_sampled.pk, reviewer=alice, label="fine")
    assert refused.value.code == "not_due"
    outsider = reviewer_create(username="fiona", password="pw-long-enough-2", group_name="finance")
    routed = submit(agent, "update_crm", 1)
    ActionRequest.objects.filter(pk=routed.pk).update(reviewer_group=alice.groups.get())
    with pytest.raises(NotFound):
        action_request_label(request_id=routed.pk, reviewer=outsider, label="fine")


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_labelling_at_once_make_exactly_one_label(agent_and_key, logged):
    agent, _ = agent_and_key
    reviewers = [reviewer_create(username=f"r{i}", password="pw-long-enough-3") for i in range(8)]
    request = submit(agent, "update_crm")

    results = run_at_once(
        lambda i: action_request_label(request_id=request.pk, reviewer=reviewers[i], label="fine").pk, count=8
    )

    assert sum(kind == "ok" for kind, _ in results) == 1
    assert {type(value).__name__ for kind, value in results if kind == "error"} == {"TransitionRefused"}
    assert AfterReviewLabel.objects.filter(request=request).count() == 1


def test_requests_older_than_the_limit_leave_the_queue_unlabelled(agent, logged, settings):
    settings.COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS = 7
    with time_machine.travel(timezone.now() - timedelta(days=8)):
        old = submit(agent, "update_crm", 1)
    fresh = submit(agent, "update_crm", 2)
    assert after_reviews_lapse_due() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.after_review, fresh.after_review) == (AfterReview.UNLABELLED, AfterReview.DUE)


# --- the page and the API ------------------------------------------------------------------------------


def test_the_page_lists_what_is_due_escaped_and_a_post_labels_it(client, agent, alice, logged):
    request = submit(agent, "update_crm")
    client.force_login(alice)
    html = client.get("/queue/afterwards/").content.decode()
    assert f'data-id="{request.pk}"' in html
    assert "&lt;b&gt;update_crm&lt;/b&gt;" in html and "<b>update_crm</b>" not in html
    answer = client.post("/queue/afterwards/", {"request_id": str(request.pk), "label": "fine"})
    assert answer.status_code == 302
    assert "Nothing waiting for a label." in client.get("/queue/afterwards/").content.decode()
    refused = client.post("/queue/afterwards/", {"request_id": str(request.pk), "label": "fine"})
    assert refused.status_code == 409


def test_the_reviewer_api_lists_and_labels(agent, alice, logged):
    first, second = submit(agent, "update_crm", 1), submit(agent, "update_crm", 2)
    api = APIClient()
    api.force_authenticate(alice)
    listed = api.get("/api/v1/review/afterwards").json()
    assert [item["id"] for item in listed["results"]] == [str(first.pk), str(second.pk)]
    assert listed["results"][0]["mode"] == "log"
    labelled = api.post(
        f"/api/v1/review/afterwards/{first.pk}/label",
        {"label": "should_have_blocked", "reason_category": "policy_violation"},
        format="json",
    )
    assert labelled.status_code == 200 and labelled.json()["label"] == "should_have_blocked"
    assert AfterReviewLabel.objects.get(request=first).surface == "api"
    conflict = api.post(f"/api/v1/review/afterwards/{first.pk}/label", {"label": "fine"}, format="json")
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "already_labelled")
    flag_without_reason = api.post(
        f"/api/v1/review/afterwards/{second.pk}/label", {"label": "should_have_asked"}, format="json"
    )
    assert flag_without_reason.status_code == 422


def test_metrics_count_labels_by_action_type_agent_policy_and_label(client, agent, alice, logged, settings):
    settings.COUNTERSIGN_METRICS_TOKEN = ""
    for n, label in enumerate(["fine", "fine", "should_have_asked"]):
        request = submit(agent, "update_crm", n)
        action_request_label(request_id=request.pk, reviewer=alice, label=label, reason_category="other")
    text = client.get("/metrics").content.decode()
    assert (
        'countersign_after_review_labels_total{action_type="update_crm",agent="support-bot",label="fine",'
        'policy="update_crm"} 2.0' in text
    )
    assert 'label="should_have_asked",policy="update_crm"} 1.0' in text


# --- the export ------------------------------------------------------------------------------------------


def test_labels_are_exported_as_after_review_records_filtered_by_label(client, admin_user, agent, alice, logged):
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schema = json.loads(Path("evaluation/schemas/after-review-record.v1.json").read_text())
    for n, label in enumerate(["fine", "should_have_asked", "should_have_blocked"]):
        request = submit(agent, "update_crm", n)
        action_request_label(request_id=request.pk, reviewer=alice, label=label, reason_category="other")
    client.force_login(admin_user)

    everything = client.get("/api/v1/after-reviews/").json()["results"]
    flagged = client.get("/api/v1/after-reviews/?audit=flagged").json()["results"]
    fine = client.get("/api/v1/after-reviews/?audit=fine&limit=1").json()

    for record in everything:
        Draft202012Validator(schema).validate(record)
    assert len(everything) == 3
    assert sorted(r["audit"]["label"] for r in flagged) == ["should_have_asked", "should_have_blocked"]
    assert [r["audit"]["label"] for r in fine["results"]] == ["fine"] and fine["has_more"] is False
    assert client.get("/api/v1/after-reviews/?audit=maybe").status_code == 422
    page = client.get("/api/v1/after-reviews/?limit=2").json()
    rest = client.get(f"/api/v1/after-reviews/?limit=2&cursor={page['next_cursor']}").json()
    assert len(page["results"]) + len(rest["results"]) == 3 and rest["has_more"] is False


def test_the_label_export_is_for_staff_or_an_evaluation_key(client, alice, agent, logged):
    client.force_login(alice)
    assert client.get("/api/v1/after-reviews/").status_code == 403
