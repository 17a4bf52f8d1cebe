"""An agent may have at most its cap of requests waiting for a reviewer; concurrent submissions never overshoot it."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from approvals.models import ActionRequest, AuditEvent, Status
from approvals.services import Submission, action_request_submit, agent_limits_set
from core.errors import TooManyRequests
from tests.helpers import reject, run_at_once, submission_body

pytestmark = pytest.mark.usefixtures("default_policies")


def post(client: APIClient, n: int, **overrides):
    # A distinct recipient each time: these are different requests, not retries of one.
    params = {"to": f"customer{n}@example.org", "subject": "Your refund", "body": "On its way."}
    body = json.dumps(submission_body(params=params, **overrides))
    return client.post("/api/v1/actions/", data=body, content_type="application/json")


def cap(agent, max_pending):
    agent_limits_set(agent=agent, rate_limit_per_minute=None, key_rate_limit_per_minute=None, max_pending=max_pending)


def test_a_pending_submission_over_the_cap_is_refused_with_the_count_and_writes_nothing(agent, api):
    cap(agent, 2)
    post(api, 1)
    post(api, 2)

    refused = post(api, 3)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "too_many_pending"
    assert error["details"] == {"pending": 2, "max_pending": 2}
    assert "Retry-After" not in refused
    assert ActionRequest.objects.filter(agent=agent).count() == 2
    assert AuditEvent.objects.filter(kind="submitted").count() == 2


@override_settings(COUNTERSIGN_MAX_PENDING_PER_AGENT=1)
def test_the_cap_setting_applies_to_an_agent_without_an_override(agent, api):
    post(api, 1)

    assert post(api, 2).json()["error"]["code"] == "too_many_pending"


def test_submissions_that_do_not_wait_for_a_reviewer_are_neither_counted_nor_refused(agent, api):
    cap(agent, 1)
    post(api, 1)

    allowed = post(api, 2, action_type="search_web")
    blocked = post(api, 3, action_type="legal_advice")

    assert (allowed.status_code, allowed.json()["status"]) == (201, "allowed")
    assert (blocked.status_code, blocked.json()["status"]) == (201, "blocked")
    assert post(api, 4).status_code == 429


def test_a_decided_request_frees_its_slot(agent, api, alice):
    cap(agent, 1)
    first = post(api, 1).json()
    reject(first["id"], alice)

    assert post(api, 2).status_code == 201


def test_a_cap_of_zero_means_no_cap(agent, api):
    cap(agent, 0)

    assert [post(api, n).status_code for n in range(3)] == [201, 201, 201]


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_submissions_with_three_slots_left_create_exactly_three(agent_and_key):
    agent, key = agent_and_key
    cap(agent, 5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    post(client, 100)
    post(client, 101)

    def submit(index: int):
        one = APIClient()
        one.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        response = post(one, index)
        return response.status_code, response.json().get("error", {}).get("code")

    results = run_at_once(submit, count=16)

    assert all(kind == "ok" for kind, _ in results), results
    outcomes = sorted(value for _, value in results)
    assert outcomes == [(201, None)] * 3 + [(429, "too_many_pending")] * 13
    assert ActionRequest.objects.filter(agent=agent, status=Status.PENDING).count() == 5


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_service_calls_with_three_slots_left_create_exactly_three(agent):
    # Straight to the service: less work before the transaction, so the threads overlap inside it.
    cap(agent, 3)

    def submit(index: int):
        return action_request_submit(
            agent=agent,
            submission=Submission(
                action_type="send_external_email", params={"to": f"c{index}@example.org"}, summary="s", evidence=[]
            ),
        ).request.pk

    results = run_at_once(submit, count=16)

    created = [value for kind, value in results if kind == "ok"]
    refused = [value for kind, value in results if kind == "error"]
    assert len(created) == 3
    assert len(refused) == 13
    assert all(isinstance(exc, TooManyRequests) and exc.code == "too_many_pending" for exc in refused)
    assert ActionRequest.objects.filter(agent=agent, status=Status.PENDING).count() == 3
