"""The kill switch's staff API: staff with the permission may pause and resume; nobody else may."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import ActionRequest, Pause, Status
from tests.factories import UserFactory
from tests.helpers import submit_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]

AGENT_PAUSE = "/api/v1/agents/support-bot/pause"
TYPE_PAUSE = "/api/v1/action-types/send_external_email/pause"
PAUSES = "/api/v1/pauses/"


def staff_client(*codenames: str, username: str = "sam") -> APIClient:
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="approvals", codename__in=codenames))
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def staff_api(db):
    return staff_client("view_pause", "change_pause")


def test_staff_pause_an_agent_and_are_told_what_it_did(staff_api, agent):
    pending = submit_as(agent)

    response = staff_api.post(AGENT_PAUSE, {"reason": "Runaway loop"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["pause"] | {"id": 0, "paused_at": ""} == {
        "id": 0,
        "kind": "agent",
        "target": "support-bot",
        "reason": "Runaway loop",
        "paused_by": "sam",
        "paused_at": "",
        "resumed_by": None,
        "resumed_at": None,
    }
    assert (body["cancelled"], body["revoked"]) == (1, 0)
    assert ActionRequest.objects.get(pk=pending.pk).status == Status.CANCELLED


def test_staff_resume_an_agent(staff_api, agent):
    staff_api.post(AGENT_PAUSE, {"reason": "Runaway loop"}, format="json")

    response = staff_api.delete(AGENT_PAUSE)

    assert response.status_code == 200
    assert response.json()["resumed_by"] == "sam"
    assert not Pause.objects.filter(resumed_at__isnull=True).exists()


def test_staff_pause_and_resume_an_action_type(staff_api):
    paused = staff_api.post(TYPE_PAUSE, {"reason": "Mail provider incident"}, format="json")
    listed = staff_api.get(PAUSES).json()["pauses"]
    resumed = staff_api.delete(TYPE_PAUSE)

    assert paused.status_code == 201
    assert [(p["kind"], p["target"]) for p in listed] == [("action_type", "send_external_email")]
    assert resumed.status_code == 200


def test_the_list_shows_only_the_pauses_in_force(staff_api, agent):
    staff_api.post(AGENT_PAUSE, {"reason": "First"}, format="json")
    staff_api.delete(AGENT_PAUSE)
    staff_api.post(TYPE_PAUSE, {"reason": "Second"}, format="json")

    listed = staff_api.get(PAUSES).json()["pauses"]

    assert [p["reason"] for p in listed] == ["Second"]


def test_a_staff_token_authenticates(agent):
    user = UserFactory(username="ops", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_pause"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert client.post(AGENT_PAUSE, {"reason": "Runaway"}, format="json").status_code == 201


def test_pausing_without_a_reason_is_422(staff_api, agent):
    response = staff_api.post(AGENT_PAUSE, {"reason": " "}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert not Pause.objects.exists()


def test_pausing_with_no_body_is_422(staff_api, agent):
    response = staff_api.post(AGENT_PAUSE, {}, format="json")

    assert response.status_code == 422
    assert not Pause.objects.exists()


def test_pausing_a_paused_agent_is_409_already_paused(staff_api, agent):
    staff_api.post(AGENT_PAUSE, {"reason": "Runaway"}, format="json")

    response = staff_api.post(AGENT_PAUSE, {"reason": "Again"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_paused"


def test_resuming_an_agent_that_is_not_paused_is_404_not_paused(staff_api, agent):
    response = staff_api.delete(AGENT_PAUSE)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_paused"


def test_pausing_an_unknown_agent_is_404(staff_api):
    response = staff_api.post("/api/v1/agents/nobody/pause", {"reason": "Runaway"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "agent_not_found"


def test_pausing_a_glob_is_422_invalid_action_type(staff_api):
    response = staff_api.post("/api/v1/action-types/delete_*/pause", {"reason": "Runaway"}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_action_type"


def test_a_reviewer_who_is_not_staff_is_403(alice, agent):
    client = APIClient()
    client.force_login(alice)

    response = client.post(AGENT_PAUSE, {"reason": "Runaway"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Pause.objects.exists()


def test_staff_without_the_change_permission_can_list_but_not_pause(agent):
    viewer = staff_client("view_pause", username="auditor")

    assert viewer.get(PAUSES).status_code == 200
    assert viewer.post(AGENT_PAUSE, {"reason": "Runaway"}, format="json").status_code == 403
    assert not Pause.objects.exists()


def test_an_agent_key_cannot_pause_anyone(api):
    response = api.post(AGENT_PAUSE, {"reason": "I pause myself"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not Pause.objects.exists()


def test_an_agent_key_cannot_list_pauses(api):
    assert api.get(PAUSES).status_code == 401


def test_anonymous_is_401():
    assert APIClient().delete(AGENT_PAUSE).status_code == 401


def test_the_schema_documents_the_pause_endpoints_and_every_status_they_return(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]

    assert set(paths[AGENT_PAUSE.replace("support-bot", "{name}")]["post"]["responses"]) == {
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "422",
    }
    assert set(paths[TYPE_PAUSE.replace("send_external_email", "{name}")]["delete"]["responses"]) == {
        "200",
        "401",
        "403",
        "404",
        "422",
    }
    assert "get" in paths[PAUSES]


def test_the_schema_documents_approval_revoked_at_execution_start(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]

    conflict = paths["/api/v1/actions/{request_id}/execution/start"]["post"]["responses"]["409"]
    assert "approval_revoked" in conflict["description"]
