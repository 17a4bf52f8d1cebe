from __future__ import annotations

import json

import pytest

from approvals.models import ActionRequest, AuditEvent
from tests.helpers import submission_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/actions/"


def post(client, body, **headers):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.parametrize(
    ("action_type", "status", "mode"),
    [
        ("search_web", "allowed", "auto"),
        ("update_internal_record", "allowed", "log"),
        ("send_external_email", "pending", "approve"),
        ("legal_advice", "blocked", "block"),
        ("never_heard_of_this", "pending", "approve"),
    ],
)
def test_each_mode_gives_its_status(api, default_policies, action_type, status, mode):
    response = post(api, submission_body(action_type=action_type))

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["mode"]) == (status, mode)
    assert body["reason"]
    assert response["Location"] == f"/api/v1/actions/{body['id']}/"


def test_pending_request_has_deadline_and_no_final_params(api, default_policies):
    body = post(api, submission_body()).json()

    assert body["expires_at"] is not None
    assert body["final_params"] is None
    assert body["policy"]["action_pattern"] == "send_external_email"
    assert body["policy"]["version"] >= 1


def test_allowed_request_carries_final_params(api, default_policies):
    body = post(api, submission_body(action_type="search_web", params={"q": "refund policy"})).json()

    assert body["final_params"] == {"q": "refund policy"}
    assert body["expires_at"] is None


def test_unknown_action_type_fails_closed_with_reason(api, default_policies):
    body = post(api, submission_body(action_type="wire_all_the_money")).json()

    assert body["status"] == "pending"
    assert body["policy"]["id"] is None
    assert "No policy matches" in body["reason"]


def test_submission_writes_one_audit_event(api, default_policies):
    body = post(api, submission_body()).json()

    events = AuditEvent.objects.filter(request_id=body["id"])
    assert [(e.kind, e.to_status, e.actor_kind) for e in events] == [("submitted", "pending", "agent")]


def test_replay_with_same_key_and_body_returns_original(api, default_policies):
    first = post(api, submission_body(), HTTP_IDEMPOTENCY_KEY="tool-call-1")
    second = post(api, submission_body(), HTTP_IDEMPOTENCY_KEY="tool-call-1")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert ActionRequest.objects.count() == 1


def test_same_key_with_different_body_is_409(api, default_policies):
    post(api, submission_body(), HTTP_IDEMPOTENCY_KEY="tool-call-1")
    response = post(api, submission_body(summary="something else"), HTTP_IDEMPOTENCY_KEY="tool-call-1")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert ActionRequest.objects.count() == 1


def test_same_key_from_two_agents_are_two_requests(api, outsider_api, default_policies):
    a = post(api, submission_body(), HTTP_IDEMPOTENCY_KEY="k")
    b = post(outsider_api, submission_body(), HTTP_IDEMPOTENCY_KEY="k")

    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
