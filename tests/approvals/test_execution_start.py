"""Execution claim: an approval is started (and so run) at most once, even across processes.

The race tests use real threads on real connections (SQLite here, PostgreSQL with
COUNTERSIGN_TEST_DB=postgres).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
import yaml
from django.utils import timezone

from approvals.models import ActionRequest, AuditEvent, Status
from approvals.services import (
    action_request_report_execution,
    action_request_start_execution,
    params_hash,
)
from core.errors import PermissionRefused, TransitionRefused
from tests.helpers import approved, run_at_once, submission_body, submit

pytestmark = pytest.mark.django_db


def start(client, action, **body):
    payload = {"approval_token": action["approval_token"], "params_hash": action["final_params_hash"], **body}
    return client.post(
        f"/api/v1/actions/{action['id']}/execution/start", data=json.dumps(payload), content_type="application/json"
    )


def violations_of(action_id):
    return [
        data["violation"]
        for data in AuditEvent.objects.filter(request_id=action_id, kind="violation").values_list("data", flat=True)
    ]


# --- the service ----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_processes_starting_one_approval_at_once_exactly_one_wins(api, agent, alice, default_policies):
    action = approved(api, alice)

    results = run_at_once(
        lambda _: action_request_start_execution(
            agent=agent,
            request_id=action["id"],
            approval_token=action["approval_token"],
            params_hash=action["final_params_hash"],
        )
    )

    winners = [value for outcome, value in results if outcome == "ok"]
    losers = [value for outcome, value in results if outcome == "error"]
    assert len(winners) == 1
    assert len(losers) == 7
    assert all(isinstance(exc, TransitionRefused) and exc.code == "execution_already_started" for exc in losers)
    request = ActionRequest.objects.get(pk=action["id"])
    assert request.execution_started_at == winners[0].execution_started_at
    assert request.status == Status.APPROVED
    assert AuditEvent.objects.filter(request_id=action["id"], kind="execution_started").count() == 1
    assert violations_of(action["id"]) == ["execution_already_started"] * 7


def test_a_refused_start_says_when_the_winner_started(api, agent, alice, default_policies):
    action = approved(api, alice)
    assert start(api, action).status_code == 200

    error = start(api, action).json()["error"]

    started = ActionRequest.objects.get(pk=action["id"]).execution_started_at
    assert error["code"] == "execution_already_started"
    assert error["details"]["execution_started_at"] == started.isoformat().replace("+00:00", "Z")
    assert error["details"]["execution_started_at"] in error["message"]


def test_start_after_the_approval_expires_is_refused_and_the_approval_lapses(api, agent, alice, default_policies):
    action = approved(api, alice)

    with (
        time_machine.travel(timezone.now() + timedelta(hours=1), tick=False),
        pytest.raises(TransitionRefused) as refused,
    ):
        action_request_start_execution(
            agent=agent,
            request_id=action["id"],
            approval_token=action["approval_token"],
            params_hash=action["final_params_hash"],
        )

    assert refused.value.code == "approval_expired"
    request = ActionRequest.objects.get(pk=action["id"])
    assert request.status == Status.LAPSED
    assert request.execution_started_at is None
    assert violations_of(action["id"]) == ["approval_expired"]


def test_start_with_another_params_hash_is_refused(api, agent, alice, default_policies):
    edited = {"to": "customer@example.org", "subject": "Your refund", "body": "Refund sent today."}
    action = approved(api, alice, final_params=edited)

    # The agent is about to run its original params, not the ones the reviewer approved.
    with pytest.raises(TransitionRefused) as refused:
        action_request_start_execution(
            agent=agent,
            request_id=action["id"],
            approval_token=action["approval_token"],
            params_hash=params_hash(submission_body()["params"]),
        )

    assert refused.value.code == "params_mismatch"
    assert ActionRequest.objects.get(pk=action["id"]).execution_started_at is None
    assert violations_of(action["id"]) == ["params_mismatch"]


def test_start_with_a_wrong_approval_token_is_refused(api, agent, alice, default_policies):
    action = approved(api, alice)

    with pytest.raises(PermissionRefused) as refused:
        action_request_start_execution(
            agent=agent, request_id=action["id"], approval_token="cat_forged", params_hash=action["final_params_hash"]
        )

    assert refused.value.code == "invalid_approval_token"
    assert violations_of(action["id"]) == ["invalid_approval_token"]


def test_an_allowed_request_can_be_started_once(api, agent, default_policies):
    action = submit(api, action_type="search_web", params={"q": "refund policy"})
    assert action["status"] == "allowed"

    first = action_request_start_execution(agent=agent, request_id=action["id"], approval_token=None, params_hash=None)
    with pytest.raises(TransitionRefused) as again:
        action_request_start_execution(agent=agent, request_id=action["id"], approval_token=None, params_hash=None)

    assert first.execution_started_at is not None
    assert again.value.code == "execution_already_started"
    assert violations_of(action["id"]) == ["execution_already_started"]


@pytest.mark.django_db(transaction=True)
def test_eight_starts_of_one_allowed_request_at_once_exactly_one_wins(api, agent, default_policies):
    action = submit(api, action_type="search_web", params={"q": "refund policy"})

    results = run_at_once(
        lambda _: action_request_start_execution(
            agent=agent, request_id=action["id"], approval_token=None, params_hash=None
        )
    )

    assert [outcome for outcome, _ in results].count("ok") == 1
    assert AuditEvent.objects.filter(request_id=action["id"], kind="execution_started").count() == 1


def test_the_report_after_a_start_is_recorded(api, agent, alice, default_policies):
    action = approved(api, alice)
    action_request_start_execution(
        agent=agent,
        request_id=action["id"],
        approval_token=action["approval_token"],
        params_hash=action["final_params_hash"],
    )

    executed = action_request_report_execution(
        agent=agent,
        request_id=action["id"],
        outcome="succeeded",
        approval_token=action["approval_token"],
        reported_params_hash=action["final_params_hash"],
    )

    assert executed.status == Status.EXECUTED
    assert executed.execution_started_at is not None


def test_the_report_without_a_start_still_works(api, alice, default_policies):
    action = approved(api, alice)

    response = api.post(
        f"/api/v1/actions/{action['id']}/execution",
        data=json.dumps(
            {
                "status": "succeeded",
                "approval_token": action["approval_token"],
                "params_hash": action["final_params_hash"],
            }
        ),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["execution_started_at"] is None


def test_start_after_the_report_is_refused_as_already_reported(api, agent, alice, default_policies):
    action = approved(api, alice)
    action_request_report_execution(
        agent=agent,
        request_id=action["id"],
        outcome="succeeded",
        approval_token=action["approval_token"],
        reported_params_hash=action["final_params_hash"],
    )

    response = start(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_reported"


# --- the endpoint ---------------------------------------------------------------------------------------------


def test_start_endpoint_answers_200_with_execution_started_at(api, alice, default_policies):
    action = approved(api, alice)
    assert action["execution_started_at"] is None
    assert action["links"]["execution_start"].endswith(f"/api/v1/actions/{action['id']}/execution/start")

    response = start(api, action)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved"
    assert body["execution_started_at"] is not None
    assert api.get(f"/api/v1/actions/{action['id']}/").json()["execution_started_at"] == body["execution_started_at"]
    assert AuditEvent.objects.filter(request_id=action["id"], kind="execution_started", actor_kind="agent").exists()


def test_second_start_is_409_execution_already_started(api, alice, default_policies):
    action = approved(api, alice)
    start(api, action)

    response = start(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "execution_already_started"


def test_start_with_a_wrong_token_is_403(api, alice, default_policies):
    action = approved(api, alice)

    response = start(api, action, approval_token="cat_forged")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_approval_token"


def test_start_with_another_params_hash_is_409_params_mismatch(api, alice, default_policies):
    action = approved(api, alice)

    response = start(api, action, params_hash="0" * 64)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "params_mismatch"


def test_start_after_approval_expires_is_409_approval_expired(api, alice, default_policies):
    action = approved(api, alice)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        response = start(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_expired"


def test_start_of_a_pending_request_is_409_not_approved(api, default_policies):
    action = submit(api)

    response = start(api, action)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_approved"
    assert violations_of(action["id"]) == ["not_approved"]


def test_start_with_an_unknown_field_is_422(api, alice, default_policies):
    action = approved(api, alice)

    response = start(api, action, status="succeeded")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_field"


def test_start_without_a_key_is_401(client, api, alice, default_policies):
    action = approved(api, alice)

    response = client.post(f"/api/v1/actions/{action['id']}/execution/start", data={}, content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_another_agent_cannot_start_the_request(api, outsider_api, alice, default_policies):
    action = approved(api, alice)

    response = start(outsider_api, action)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert ActionRequest.objects.get(pk=action["id"]).execution_started_at is None


def test_openapi_documents_the_start_endpoint_and_its_statuses(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/actions/{request_id}/execution/start"]["post"]

    assert operation["operationId"] == "actions_start_execution"
    assert {"200", "400", "401", "403", "404", "409", "415", "422"} <= set(operation["responses"])
    assert "execution_already_started" in operation["responses"]["409"]["description"]


def test_the_same_run_repeating_its_start_is_told_it_is_still_its_own(api, alice, default_policies):
    action = approved(api, alice)
    body = {"approval_token": action["approval_token"], "params_hash": action["final_params_hash"], "run_id": "run-a"}
    url = f"/api/v1/actions/{action['id']}/execution/start"

    first = api.post(url, body, format="json")
    repeat = api.post(url, body, format="json")  # its first answer was lost: the client retries
    other = api.post(url, {**body, "run_id": "run-b"}, format="json")  # another process
    anonymous = api.post(url, {k: v for k, v in body.items() if k != "run_id"}, format="json")

    assert (first.status_code, repeat.status_code) == (200, 200)
    assert repeat.json()["execution_started_at"] == first.json()["execution_started_at"]
    assert other.json()["error"]["code"] == "execution_already_started"
    assert anonymous.json()["error"]["code"] == "execution_already_started"
    assert AuditEvent.objects.filter(request_id=action["id"], kind="execution_started").count() == 1
    assert AuditEvent.objects.filter(request_id=action["id"], kind="violation").count() == 2
