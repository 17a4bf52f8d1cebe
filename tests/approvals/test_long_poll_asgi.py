"""The long-poll as production serves it: config.asgi's application, beside Django's middleware stack.

Driven as uvicorn drives it (ASGI messages), with the real channel layer and database. Each test
compares with what the full stack does, so that the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.testing import HttpCommunicator
from django.db import connection

from approvals.api import waiting
from approvals.api.long_poll_asgi import is_long_poll
from approvals.services import action_request_decide, agent_create
from config.asgi import application
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

SECURITY_HEADERS = (
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "content-security-policy",
)


def _created(status: str = "pending") -> tuple[str, str]:
    try:
        agent, key = agent_create(name=f"waiter-{uuid.uuid4().hex[:8]}")
        return str(PendingRequestFactory(agent=agent, status=status).pk), key
    finally:
        connection.close()


created = sync_to_async(_created, thread_sensitive=False)


async def call(path: str, *, key: str | None = None, method: str = "GET", headers=(), timeout: float = 5):
    sent = [(b"host", b"testserver"), *headers]
    if key is not None:
        sent.append((b"authorization", f"Bearer {key}".encode()))
    response = await HttpCommunicator(application, method, path, headers=sent).get_response(timeout=timeout)
    response["headers"] = {name.decode().lower(): value.decode() for name, value in response["headers"]}
    response["json"] = json.loads(response["body"]) if response["body"] else None
    return response


async def test_the_router_sends_exactly_the_urlconfs_long_poll_paths_there():
    assert is_long_poll("/api/v1/actions/8d3f3f1e-0000-4000-8000-000000000000/wait")
    assert is_long_poll("/api/v1/actions/8d3f3f1e-0000-4000-8000-000000000000/wait/")
    assert is_long_poll("/api/v1/actions/not-an-id/wait")  # the view answers its 404
    assert not is_long_poll("/api/v1/actions/8d3f3f1e-0000-4000-8000-000000000000/")
    assert not is_long_poll("/api/v1/actions/8d3f3f1e-0000-4000-8000-000000000000/waitlist")
    assert not is_long_poll("/api/v1/actions/a/b/wait")


async def test_a_decided_request_answers_as_the_full_stack_answers_its_other_reads():
    request_id, key = await created("rejected")

    waited = await call(f"/api/v1/actions/{request_id}/wait?timeout=5", key=key)
    read = await call(f"/api/v1/actions/{request_id}/", key=key)  # through Django's full stack

    assert waited["status"] == 200 and read["status"] == 200
    assert waited["json"]["status"] == "rejected"
    assert waited["json"] == read["json"]
    for header in SECURITY_HEADERS:
        assert waited["headers"].get(header) == read["headers"].get(header), header
        assert waited["headers"].get(header), f"{header} missing"


@pytest.mark.parametrize(
    ("path", "method", "with_key", "status", "code"),
    [
        ("/api/v1/actions/{id}/wait", "POST", True, 405, "method_not_allowed"),
        ("/api/v1/actions/{id}/wait", "GET", False, 401, "not_authenticated"),
        ("/api/v1/actions/{id}/wait?timeout=abc", "GET", True, 400, "invalid_timeout"),
        ("/api/v1/actions/{id}/wait?timeout=%00", "GET", True, 400, "invalid_characters"),
        ("/api/v1/actions/00000000-0000-4000-8000-000000000000/wait", "GET", True, 404, "not_found"),
    ],
)
async def test_every_refusal_is_the_json_error_shape_with_the_security_headers(path, method, with_key, status, code):
    request_id, key = await created()

    response = await call(path.format(id=request_id), key=key if with_key else None, method=method)

    assert response["status"] == status
    assert response["json"]["error"]["code"] == code
    assert response["headers"]["content-type"] == "application/json"
    for header in SECURITY_HEADERS:
        assert response["headers"].get(header), f"{header} missing"


async def test_an_unknown_host_is_refused_in_json_as_the_stack_refuses_it():
    request_id, key = await created()
    path = f"/api/v1/actions/{request_id}/"

    waited = await call(f"{path}wait?timeout=1", key=key, headers=[(b"host", b"evil.example")])
    read = await call(path, key=key, headers=[(b"host", b"evil.example")])

    assert waited["status"] == read["status"] == 400
    assert waited["json"] == read["json"]


async def test_waiting_agents_hold_no_thread_of_their_own():
    """Through Django's handler each request gets a thread-sensitive executor (a thread) for its life."""
    awaited = [await created() for _ in range(5)]
    responses = [
        asyncio.create_task(
            HttpCommunicator(
                application,
                "GET",
                f"/api/v1/actions/{request_id}/wait?timeout=3",
                headers=[(b"host", b"testserver"), (b"authorization", f"Bearer {key}".encode())],
            ).get_response(timeout=6)
        )
        for request_id, key in awaited
    ]
    await asyncio.sleep(1)  # all five are waiting now

    assert len(waiting.recheck_round()._watches) == 5
    assert len(SyncToAsync.context_to_thread_executor) == 0

    for response in await asyncio.gather(*responses):
        assert response["status"] == 200 and json.loads(response["body"])["status"] == "pending"


async def test_an_agent_that_hangs_up_stops_waiting_at_once():
    request_id, key = await created()
    communicator = ApplicationCommunicator(
        application,
        {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/api/v1/actions/{request_id}/wait",
            "raw_path": f"/api/v1/actions/{request_id}/wait".encode(),
            "query_string": b"timeout=30",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {key}".encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        },
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    await asyncio.sleep(0.5)
    assert waiting.recheck_round()._watches, "the agent is waiting"

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=2)  # the application returns: the wait was cancelled, not timed out

    assert not waiting.recheck_round()._watches


def _many_created(count: int) -> tuple[list[str], str]:
    try:
        agent, key = agent_create(name=f"burst-{uuid.uuid4().hex[:8]}")
        return [str(PendingRequestFactory(agent=agent).pk) for _ in range(count)], key
    finally:
        connection.close()


def _approve_all(request_ids: list[str]) -> None:
    try:
        reviewer = reviewer_create(username=f"r-{uuid.uuid4().hex[:8]}", password="pw-long-enough")
        for request_id in request_ids:
            action_request_decide(request_id=request_id, reviewer=reviewer, approve=True)
    finally:
        connection.close()


async def test_a_burst_of_agents_starting_to_wait_at_once_all_get_their_live_events(caplog):
    """More waiters arriving at once than the channel layer's Redis pool has connections (100)."""
    request_ids, key = await sync_to_async(_many_created, thread_sensitive=False)(150)
    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {key}".encode())]
    responses = [
        asyncio.create_task(
            HttpCommunicator(
                application, "GET", f"/api/v1/actions/{rid}/wait?timeout=20", headers=headers
            ).get_response(timeout=25)
        )
        for rid in request_ids
    ]
    rechecks = waiting.recheck_round()
    while len(rechecks._watches) < len(request_ids):
        await asyncio.sleep(0.05)

    assert rechecks.without_live_events == 0, "every waiter joined its request's group"
    assert "falling back to polling" not in caplog.text

    await sync_to_async(_approve_all, thread_sensitive=False)(request_ids)
    answered = await asyncio.gather(*responses)
    assert {json.loads(response["body"])["status"] for response in answered} == {"approved"}
