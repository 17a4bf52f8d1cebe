from __future__ import annotations

import uuid

import pytest

from approvals.models import AuditEvent
from approvals.services import action_request_decide
from tests.helpers import reject, submit

pytestmark = pytest.mark.django_db


def test_agent_reads_its_own_request(api, default_policies):
    created = submit(api)

    response = api.get(f"/api/v1/actions/{created['id']}/")

    assert response.status_code == 200
    assert response.json()["status"] == "pending"


def test_outsider_gets_404_reading(api, outsider_api, default_policies):
    created = submit(api)

    response = outsider_api.get(f"/api/v1/actions/{created['id']}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_outsider_gets_404_cancelling_and_nothing_changes(api, outsider_api, default_policies):
    created = submit(api)

    response = outsider_api.post(f"/api/v1/actions/{created['id']}/cancel/")

    assert response.status_code == 404
    assert api.get(f"/api/v1/actions/{created['id']}/").json()["status"] == "pending"


def test_malformed_id_is_404(api):
    assert api.get("/api/v1/actions/not-a-uuid/").status_code == 404
    assert api.get(f"/api/v1/actions/{uuid.uuid4()}/").status_code == 404


def test_agent_cancels_pending_request(api, default_policies):
    created = submit(api)

    response = api.post(f"/api/v1/actions/{created['id']}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(request_id=created["id"], kind="cancelled").count() == 1


def test_cancelling_a_decided_request_is_409(api, default_policies, alice):
    created = submit(api)
    action_request_decide(request_id=created["id"], reviewer=alice, approve=True)

    response = api.post(f"/api/v1/actions/{created['id']}/cancel/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_decided"


def test_approved_request_shows_final_params_and_approval_deadline(api, default_policies, alice):
    created = submit(api)
    action_request_decide(request_id=created["id"], reviewer=alice, approve=True, final_params={"to": "x@example.org"})

    body = api.get(f"/api/v1/actions/{created['id']}/").json()

    assert body["status"] == "approved"
    assert body["final_params"] == body["approved_params"] == {"to": "x@example.org"}
    assert body["edited"] is True
    assert body["approval_expires_at"] is not None
    assert body["decision"]["reviewer"] == "alice"


def test_rejected_request_carries_the_reason(api, default_policies, alice):
    created = submit(api)
    reject(created["id"], alice, reason="Wrong recipient", category="wrong_recipient")

    body = api.get(f"/api/v1/actions/{created['id']}/").json()

    assert body["status"] == "rejected"
    assert body["final_params"] is None
    assert body["decision"]["reason"] == "Wrong recipient"
