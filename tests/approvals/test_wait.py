"""The async long-poll, driven with Django's AsyncClient; the decision happens in another thread."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

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


async def test_wait_returns_as_soon_as_the_request_is_decided():
    client, _ = await setup_agent()
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    created = await submit(client)

    async def decide_soon():
        await asyncio.sleep(0.5)
        # Off the shared sync thread, which the in-process test client keeps busy for the waiting request.
        await sync_to_async(action_request_decide, thread_sensitive=False)(
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
