"""The async long-poll, driven with Django's AsyncClient; the decision happens in another thread."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient

from approvals.api import waiting
from approvals.models import ActionRequest
from approvals.services import action_request_decide, agent_create
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create
from tests.helpers import submission_body

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


class AgentClient:
    """AsyncClient with the agent's key on every request (AsyncClient drops constructor headers here)."""

    def __init__(self, key: str) -> None:
        self.client = AsyncClient()
        self.headers = {"Authorization": f"Bearer {key}"}

    async def get(self, path, **kwargs):
        return await self.client.get(path, headers=self.headers, **kwargs)

    async def post(self, path, **kwargs):
        return await self.client.post(path, headers=self.headers, **kwargs)


async def setup_agent():
    await sync_to_async(policies_load_defaults)()
    _, key = await sync_to_async(agent_create)(name="waiter")
    return AgentClient(key), key


async def submit(client, **overrides):
    response = await client.post(
        "/api/v1/actions/", data=json.dumps(submission_body(**overrides)), content_type="application/json"
    )
    assert response.status_code == 201
    return response.json()


def decide_and_hand_back_the_connection(**kwargs) -> None:
    try:
        action_request_decide(**kwargs)
    finally:
        connection.close()  # an executor thread's own connection would outlive the test


async def test_wait_returns_as_soon_as_the_request_is_decided():
    client, _ = await setup_agent()
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    created = await submit(client)

    async def decide_soon():
        await asyncio.sleep(0.5)
        # Off the shared sync thread, which the in-process test client keeps busy for the waiting request.
        await sync_to_async(decide_and_hand_back_the_connection, thread_sensitive=False)(
            request_id=created["id"], reviewer=alice, approve=True, final_params={"to": "edited@example.org"}
        )

    started = time.monotonic()
    decider = asyncio.create_task(decide_soon())
    response = await client.get(f"/api/v1/actions/{created['id']}/wait?timeout=20")
    elapsed = time.monotonic() - started
    await decider  # re-raises if the decision itself failed

    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["final_params"] == {"to": "edited@example.org"}
    assert elapsed < 4, "the waiter should wake on the live event, not on its 5 s re-check"


async def test_wait_times_out_with_the_request_still_pending():
    client, _ = await setup_agent()
    created = await submit(client)

    response = await client.get(f"/api/v1/actions/{created['id']}/wait?timeout=0.3")

    assert response.status_code == 200
    assert response.json()["status"] == "pending"


async def test_wait_on_a_decided_request_returns_immediately():
    client, _ = await setup_agent()
    created = await submit(client, action_type="search_web")

    response = await client.get(f"/api/v1/actions/{created['id']}/wait?timeout=30")

    assert response.json()["status"] == "allowed"


@pytest.mark.parametrize("timeout", ["-1", "56", "abc", "nan"])
async def test_wait_rejects_a_bad_timeout(timeout):
    client, _ = await setup_agent()
    created = await submit(client)

    response = await client.get(f"/api/v1/actions/{created['id']}/wait?timeout={timeout}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_timeout"


async def test_wait_without_a_key_is_401():
    response = await AsyncClient().get("/api/v1/actions/00000000-0000-0000-0000-000000000000/wait")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_outsider_waiting_on_someone_elses_request_gets_404():
    client, _ = await setup_agent()
    created = await submit(client)
    _, other_key = await sync_to_async(agent_create)(name="other")

    response = await AgentClient(other_key).get(f"/api/v1/actions/{created['id']}/wait?timeout=1")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_wait_with_another_method_is_a_json_405_that_says_get():
    response = await AsyncClient().post("/api/v1/actions/00000000-0000-0000-0000-000000000000/wait")

    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def hand_back_the_connection() -> None:
    connection.close()


@sync_to_async(thread_sensitive=False)
def settle_behind_the_live_events_back(request_id: str) -> None:
    """A bare UPDATE publishes nothing: only the recheck round can notice it."""
    try:
        ActionRequest.objects.filter(pk=request_id).update(status="rejected")
    finally:
        connection.close()  # an executor thread's own connection would outlive the test


async def test_a_waiter_whose_live_event_is_lost_still_hears_of_its_decision(monkeypatch):
    monkeypatch.setattr(waiting, "ROUND_SECONDS", 0.3)
    client, _ = await setup_agent()
    created = await submit(client)

    async def reject_quietly():
        await asyncio.sleep(0.5)
        await settle_behind_the_live_events_back(created["id"])

    started = time.monotonic()
    settler = asyncio.create_task(reject_quietly())
    response = await client.get(f"/api/v1/actions/{created['id']}/wait?timeout=10")
    await settler

    assert response.json()["status"] == "rejected"
    assert time.monotonic() - started < 3, "the round should notice within a 0.3 s round, not at the timeout"
    assert not waiting.recheck_round()._watches, "the waiter left the round when it returned"


async def test_one_round_wakes_exactly_the_waiters_whose_requests_settled(monkeypatch):
    monkeypatch.setattr(waiting, "ROUND_SECONDS", 0.2)
    client, _ = await setup_agent()
    first, second, third = [
        await submit(client, params={"to": f"{n}@example.org", "subject": "Hi", "body": "Hello"}) for n in range(3)
    ]
    rechecks = waiting.recheck_round()

    with (
        rechecks.watching(uuid.UUID(first["id"]), live_events=True) as first_waiter,
        rechecks.watching(uuid.UUID(first["id"]), live_events=True) as first_waiter_again,
        rechecks.watching(uuid.UUID(second["id"]), live_events=True) as second_waiter,
        rechecks.watching(uuid.UUID(third["id"]), live_events=True) as third_waiter,
    ):
        await settle_behind_the_live_events_back(first["id"])
        seen = {
            "first": first_waiter.settle_seen(),
            "first again": first_waiter_again.settle_seen(),
            "second": second_waiter.settle_seen(),
            "third": third_waiter.settle_seen(),
        }
        await asyncio.wait(seen.values(), timeout=1.5)  # several rounds: the others must stay asleep
        woken = {name for name, future in seen.items() if future.done()}

    assert woken == {"first", "first again"}
    assert not rechecks._watches
    # The last to leave stops the round (at once, or as soon as a read in flight is back).
    assert rechecks._task is None or await asyncio.wait_for(rechecks._task, timeout=1) is None
    await sync_to_async(hand_back_the_connection)()  # the sync thread's, borrowed by the submissions
