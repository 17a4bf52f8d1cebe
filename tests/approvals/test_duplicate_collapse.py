"""A retry identical to one of the agent's pending requests returns that request instead of a new card."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from approvals.models import ActionRequest, QueueNotification
from approvals.services import Submission, action_request_submit
from policies.selectors import policy_table_cache_clear
from tests.factories import PolicyFactory
from tests.helpers import reject, run_at_once, submission_body

pytestmark = pytest.mark.usefixtures("default_policies")


def post(client: APIClient, *, idempotency_key: str | None = None, **overrides):
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    body = json.dumps(submission_body(**overrides))
    return client.post("/api/v1/actions/", data=body, content_type="application/json", **headers)


def test_an_identical_retry_returns_the_pending_request_with_200_and_the_duplicate_flag(agent, api):
    first = post(api).json()

    retry = post(api, summary="Reworded by the model on retry", context={"trace_id": "other", "session_id": "s-1"})

    assert retry.status_code == 200
    body = retry.json()
    assert (body["id"], body["duplicate"], body["duplicate_of"]) == (first["id"], True, first["id"])
    assert body["status"] == "pending"
    assert ActionRequest.objects.filter(agent=agent).count() == 1


def test_an_identical_retry_sends_no_second_queue_notification(agent, api, django_capture_on_commit_callbacks):
    post(api)
    before = QueueNotification.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        post(api)

    assert QueueNotification.objects.count() == before
    assert callbacks == []


def test_a_changed_param_makes_a_new_request(agent, api):
    first = post(api).json()

    changed = post(api, params={**submission_body()["params"], "to": "someone-else@example.org"})

    assert changed.status_code == 201
    assert changed.json()["id"] != first["id"]
    assert "duplicate" not in changed.json()


def test_another_task_context_makes_a_new_request(agent, api):
    post(api)

    other_session = post(api, context={"trace_id": "trace-abc", "session_id": "s-2"})

    assert other_session.status_code == 201


def test_the_same_params_under_another_action_type_make_a_new_request(agent, api):
    post(api)

    assert post(api, action_type="update_customer_record").status_code == 201


def test_a_retry_of_a_request_no_longer_pending_makes_a_new_request(agent, api, alice):
    first = post(api).json()
    reject(first["id"], alice)

    again = post(api)

    assert again.status_code == 201
    assert again.json()["id"] != first["id"]


def test_with_an_idempotency_key_a_replay_is_the_original_and_a_new_key_collapses_into_it(agent, api):
    first = post(api, idempotency_key="call-1")

    replay = post(api, idempotency_key="call-1")
    other_key = post(api, idempotency_key="call-2")

    assert (first.status_code, replay.status_code, other_key.status_code) == (201, 200, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert "duplicate" not in replay.json()
    # A loop that keys every call (as our client does) still makes one card.
    assert other_key.json()["id"] == first.json()["id"]
    assert other_key.json()["duplicate"] is True
    assert ActionRequest.objects.count() == 1


def test_a_reused_key_with_another_body_is_still_a_conflict(agent, api):
    post(api, idempotency_key="call-1")

    changed = post(api, idempotency_key="call-1", params={"to": "someone-else@example.org"})

    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_conflict"


def test_a_policy_with_collapse_duplicates_off_makes_a_card_per_submission(agent, api):
    PolicyFactory(action_pattern="send_external_email", mode="approve", priority=100, collapse_duplicates=False)
    policy_table_cache_clear()

    statuses = [post(api).status_code for _ in range(2)]

    assert statuses == [201, 201]
    assert ActionRequest.objects.filter(agent=agent).count() == 2


def test_collapsed_duplicates_do_not_count_against_the_pending_cap(agent, api):
    agent.max_pending = 1
    agent.save()
    post(api)

    assert post(api).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_eight_identical_submissions_at_once_make_one_card(agent_and_key):
    policy_table_cache_clear()
    agent, key = agent_and_key
    body = json.dumps(submission_body())

    def submit(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        response = client.post("/api/v1/actions/", data=body, content_type="application/json")
        return response.status_code, response.json()["id"]

    results = run_at_once(submit)

    assert all(kind == "ok" for kind, _ in results), results
    assert sorted(code for _, (code, _) in results) == [200] * 7 + [201]
    assert len({request_id for _, (_, request_id) in results}) == 1
    assert ActionRequest.objects.filter(agent=agent).count() == 1


@pytest.mark.django_db(transaction=True)
def test_eight_identical_service_calls_at_once_make_one_card(agent):
    policy_table_cache_clear()

    def submit(_):
        result = action_request_submit(
            agent=agent,
            submission=Submission(
                action_type="send_external_email", params={"to": "c@example.org"}, summary="s", evidence=[]
            ),
        )
        return result.created, result.request.pk

    results = run_at_once(submit)

    assert all(kind == "ok" for kind, _ in results), results
    assert sorted(created for _, (created, _) in results) == [False] * 7 + [True]
    assert ActionRequest.objects.filter(agent=agent).count() == 1
