from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.test import override_settings

from approvals.models import AuditEvent, Decision, Status, Vote, WebhookDelivery
from approvals.selectors import reject_reason_categories
from approvals.services import action_request_decide
from core.errors import InvalidInput
from tests.factories import AgentFactory, PendingRequestFactory
from tests.helpers import decide_view, reject

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("approvals.migrations.0004_reject_reason_category").backfill_reason_category


def test_default_categories_are_listed_in_order():
    assert reject_reason_categories() == [
        {"slug": "wrong_recipient", "label": "Wrong recipient"},
        {"slug": "wrong_data", "label": "Wrong data"},
        {"slug": "policy_violation", "label": "Policy violation"},
        {"slug": "not_needed", "label": "Not needed"},
        {"slug": "unsafe", "label": "Unsafe"},
        {"slug": "other", "label": "Other"},
    ]


@override_settings(COUNTERSIGN_REJECT_REASONS=[("pii", "Contains personal data"), ("other", "Other")])
def test_configured_categories_replace_the_defaults(alice):
    request = PendingRequestFactory()

    decision = action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason_category="pii", reason="Quotes a card number"
    )

    assert reject_reason_categories() == [
        {"slug": "pii", "label": "Contains personal data"},
        {"slug": "other", "label": "Other"},
    ]
    assert decision.reason_category == "pii"


def test_env_choices_parses_slug_label_pairs(monkeypatch):
    from config.env import env_choices

    monkeypatch.setenv("X_REASONS", "pii=Personal data, too_late = Too late")

    assert env_choices("X_REASONS", []) == [("pii", "Personal data"), ("too_late", "Too late")]


@pytest.mark.parametrize("raw", ["pii", "pii=", "=Label", "bad slug=Label", "a=A,a=B"])
def test_env_choices_refuses_a_malformed_value(monkeypatch, raw):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_choices

    monkeypatch.setenv("X_REASONS", raw)

    with pytest.raises(ImproperlyConfigured, match="X_REASONS"):
        env_choices("X_REASONS", [])


def test_rejection_records_its_category(alice):
    request = PendingRequestFactory()

    decision = action_request_decide(
        request_id=request.id,
        reviewer=alice,
        approve=False,
        reason_category="wrong_recipient",
        reason="This customer asked not to be emailed",
    )

    assert decision.reason_category == "wrong_recipient"
    assert decision.reason == "This customer asked not to be emailed"
    assert AuditEvent.objects.get(request=request, kind="rejected").data["reason_category"] == "wrong_recipient"


def test_rejection_without_a_category_is_refused(alice):
    request = PendingRequestFactory()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=False, reason="Wrong person")

    assert exc.value.code == "reason_category_required"
    assert exc.value.status == 422
    assert "wrong_recipient" in exc.value.message
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_unknown_category_is_refused_with_the_valid_ones(alice):
    request = PendingRequestFactory()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(
            request_id=request.id, reviewer=alice, approve=False, reason_category="vibes", reason="Feels off"
        )

    assert exc.value.code == "invalid_reason_category"
    assert exc.value.status == 422
    for slug in ("wrong_recipient", "wrong_data", "policy_violation", "not_needed", "unsafe", "other"):
        assert slug in exc.value.message
    assert exc.value.details["valid"][0] == "wrong_recipient"
    assert not Decision.objects.exists()


def test_approval_with_a_category_is_refused(alice):
    request = PendingRequestFactory()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=True, reason_category="unsafe")

    assert exc.value.code == "invalid_reason_category"
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_approval_has_an_empty_category(alice):
    request = PendingRequestFactory()

    decision = action_request_decide(request_id=request.id, reviewer=alice, approve=True)

    assert decision.reason_category == ""


def test_legacy_slug_prefix_in_the_reason_becomes_the_category(alice):
    request = PendingRequestFactory()

    decision = action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason="Wrong_Data: the amount is off by 10x"
    )

    assert decision.reason_category == "wrong_data"
    assert decision.reason == "Wrong_Data: the amount is off by 10x"


def test_unknown_prefix_does_not_count_as_a_category(alice):
    request = PendingRequestFactory()

    with pytest.raises(InvalidInput) as exc:
        action_request_decide(request_id=request.id, reviewer=alice, approve=False, reason="tone: too casual")

    assert exc.value.code == "reason_category_required"


def test_quorum_rejection_vote_keeps_its_category(alice, bob):
    request = PendingRequestFactory(required_approvals=2)

    decision = action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason_category="unsafe", reason="Deletes prod"
    )

    assert Vote.objects.get(request=request).reason_category == "unsafe"
    assert decision.reason_category == "unsafe"


def test_reviewer_endpoint_passes_the_category(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = decide_view(client, request, decision="reject", reason_category="not_needed", reason="Done already")

    assert response.status_code == 200
    assert Decision.objects.get(request=request).reason_category == "not_needed"


def test_reviewer_endpoint_refuses_an_unknown_category(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = decide_view(client, request, decision="reject", reason_category="nope", reason="Done already")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_reason_category"
    assert "not_needed" in error["message"]


def test_reviewer_endpoint_refuses_a_rejection_without_category(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = decide_view(client, request, decision="reject", reason="Done already")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "reason_category_required"


def test_agent_sees_category_and_reason(api, agent, alice):
    request = PendingRequestFactory(agent=agent)
    action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason_category="wrong_data", reason="Amount is wrong"
    )

    body = api.get(f"/api/v1/actions/{request.id}/").json()

    assert body["status"] == "rejected"
    assert body["decision"]["reason_category"] == "wrong_data"
    assert body["decision"]["reason"] == "Amount is wrong"


def test_agent_sees_no_category_on_an_approval(api, agent, alice):
    request = PendingRequestFactory(agent=agent)
    action_request_decide(request_id=request.id, reviewer=alice, approve=True)

    body = api.get(f"/api/v1/actions/{request.id}/").json()

    assert body["decision"]["reason_category"] is None


def test_webhook_event_carries_the_category(alice):
    request = PendingRequestFactory(agent=AgentFactory(default_callback_url="https://agent.example/hook"))

    action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason_category="unsafe", reason="Deletes prod"
    )

    payload = WebhookDelivery.objects.get(request=request).payload
    assert payload["type"] == "action.rejected"
    assert payload["data"]["decision"]["reason_category"] == "unsafe"
    assert payload["data"]["decision"]["reason"] == "Deletes prod"


def _legacy_decision(request, *, reason, outcome="rejected"):
    return Decision.objects.create(
        request=request,
        outcome=outcome,
        reviewer_username="old-reviewer",
        reason=reason,
        original_params=request.params,
        request_snapshot={},
        verdict={},
        decided_at=request.created_at,
        seconds_to_decide=1.0,
    )


def test_migration_backfills_known_prefixes_only(alice):
    known = _legacy_decision(PendingRequestFactory(status="rejected"), reason="unsafe: deletes prod")
    unknown = _legacy_decision(PendingRequestFactory(status="rejected"), reason="tone: too casual")
    plain = _legacy_decision(PendingRequestFactory(status="rejected"), reason="Wrong customer")
    approved = _legacy_decision(PendingRequestFactory(status="approved"), reason="unsafe: but fine", outcome="approved")
    vote_request = PendingRequestFactory(required_approvals=2)
    vote = Vote.objects.create(
        request=vote_request,
        reviewer=alice,
        reviewer_username="alice",
        approve=False,
        reason="Not_Needed: done",
        created_at=vote_request.created_at,
    )

    backfill(django_apps, None)

    assert [Decision.objects.get(pk=d.pk).reason_category for d in (known, unknown, plain, approved)] == [
        "unsafe",
        "",
        "",
        "",
    ]
    assert Vote.objects.get(pk=vote.pk).reason_category == "not_needed"


# --- evaluation data -------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _export_categories(staff_client, **query):
    response = staff_client.get("/api/v1/decisions/", query)
    assert response.status_code == 200, response.content
    return {r["decision"]["reason"]: r["decision"]["reason_category"] for r in response.json()["results"]}


def test_evaluation_record_uses_the_field_and_falls_back_to_the_prefix(staff_client, alice):
    request = PendingRequestFactory()
    action_request_decide(
        request_id=request.id, reviewer=alice, approve=False, reason_category="wrong_data", reason="pii: also this"
    )
    _legacy_decision(PendingRequestFactory(status="rejected"), reason="tone: too casual")
    _legacy_decision(PendingRequestFactory(status="rejected"), reason="Wrong customer")

    assert _export_categories(staff_client) == {
        "pii: also this": "wrong_data",
        "tone: too casual": "tone",
        "Wrong customer": "uncategorised",
    }


def test_evaluation_filter_matches_the_field_or_a_legacy_prefix(staff_client, alice):
    reject(PendingRequestFactory().id, alice, category="unsafe", reason="Drops a table")
    reject(PendingRequestFactory().id, alice, category="wrong_data", reason="unsafe: a prefix that is not the category")
    _legacy_decision(PendingRequestFactory(status="rejected"), reason="unsafe: legacy row")
    _legacy_decision(PendingRequestFactory(status="rejected"), reason="Wrong customer")

    assert set(_export_categories(staff_client, reason_category="unsafe")) == {"Drops a table", "unsafe: legacy row"}
    assert set(_export_categories(staff_client, reason_category="uncategorised")) == {"Wrong customer"}
