"""The live queue over a real websocket: the real ASGI app, the real Redis channel layer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from approvals.services import Submission, action_request_decide, action_request_submit, agent_create
from config.asgi import application
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def session_cookie_for(user) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def connect_as(user=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [(b"origin", b"http://localhost")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie_for)(user)))
    communicator = WebsocketCommunicator(application, "/ws/queue/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def submit_pending():
    policies_load_defaults()
    agent, _ = agent_create(name="ws-agent")
    return action_request_submit(
        agent=agent,
        submission=Submission(
            action_type="send_external_email",
            params={"to": "c@example.org"},
            summary="<b>Refund</b> email",
            evidence=[{"title": "Ticket", "url": "javascript:alert(1)", "excerpt": "x"}],
        ),
    ).request


async def test_reviewer_sees_a_new_request_arrive_and_leave():
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    bob = await sync_to_async(reviewer_create)(username="bob", password="pw-long-enough")
    communicator, connected, _ = await connect_as(alice)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"

    request = await sync_to_async(submit_pending)()
    added = await communicator.receive_json_from(timeout=5)
    assert added["type"] == "added"
    assert added["card"]["id"] == str(request.id)
    assert added["card"]["summary"] == "<b>Refund</b> email"
    assert added["card"]["evidence"][0]["href"] is None

    await sync_to_async(action_request_decide)(request_id=request.id, reviewer=bob, approve=True)
    removed = await communicator.receive_json_from(timeout=5)
    assert removed == {
        "type": "removed",
        "id": str(request.id),
        "status": "approved",
        "by": "bob",
        "facets": {"action_type": "send_external_email", "agent": "ws-agent", "risk": request.risk, "group": ""},
    }
    await communicator.disconnect()


async def test_logged_in_non_reviewer_is_refused():
    charlie = await sync_to_async(UserFactory)(username="charlie")
    _, connected, code = await connect_as(charlie)

    assert not connected
    assert code == 4403


async def test_anonymous_visitor_is_refused():
    _, connected, code = await connect_as(None)

    assert not connected
    assert code == 4403


async def test_outsider_gets_no_queue_events():
    charlie = await sync_to_async(UserFactory)(username="charlie")
    communicator, connected, _ = await connect_as(charlie)
    assert not connected

    await sync_to_async(submit_pending)()

    assert await communicator.receive_nothing(timeout=0.5)


async def test_a_claim_reaches_other_reviewers_and_is_released_when_the_socket_closes():
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    bob = await sync_to_async(reviewer_create)(username="bob", password="pw-long-enough")
    request = await sync_to_async(submit_pending)()
    alice_socket, _, _ = await connect_as(alice)
    bob_socket, _, _ = await connect_as(bob)
    for socket in (alice_socket, bob_socket):
        assert (await socket.receive_json_from(timeout=5))["type"] == "hello"

    await alice_socket.send_json_to({"type": "claim", "id": str(request.id)})
    answer = await alice_socket.receive_json_from(timeout=5)
    assert answer["type"] == "claim" and answer["claim"]["by"] == "alice"
    seen_by_bob = await bob_socket.receive_json_from(timeout=5)
    assert seen_by_bob["type"] == "claimed" and seen_by_bob["by"] == "alice" and seen_by_bob["id"] == str(request.id)

    await bob_socket.send_json_to({"type": "claim", "id": str(request.id)})
    refused = await bob_socket.receive_json_from(timeout=5)
    while refused["type"] != "claim":
        refused = await bob_socket.receive_json_from(timeout=5)
    assert refused["claim"]["by"] == "alice"  # bob is told, alice keeps it

    # The release runs in the disconnect handler; the communicator cancels a handler still
    # running after its default 1 s, which a loaded machine can exceed (a lost release, not a slow one).
    await alice_socket.disconnect(timeout=10)
    # Generous: with both database suites running at once on two cores, the release has been seen to take
    # over 5 s to come round; a release that never comes still fails here.
    released = await bob_socket.receive_json_from(timeout=20)
    assert released == {"type": "released", "id": str(request.id), "by": "alice"}
    await bob_socket.send_json_to({"type": "nonsense"})
    assert (await bob_socket.receive_json_from(timeout=5))["type"] == "error"
    await bob_socket.disconnect()


def _reviewers_with_sessions(count: int) -> list[bytes]:
    suffix = uuid.uuid4().hex[:6]
    return [
        session_cookie_for(reviewer_create(username=f"burst-{suffix}-{i}", password="pw-long-enough"))
        for i in range(count)
    ]


async def test_a_burst_of_queue_pages_opening_at_once_all_join_their_groups():
    """More sockets joining at once than the channel layer's Redis pool has connections (100)."""
    cookies = await sync_to_async(_reviewers_with_sessions)(150)

    async def opened(cookie: bytes) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            application, "/ws/queue/", headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)]
        )
        connected, code = await communicator.connect(timeout=30)
        assert connected, code
        assert (await communicator.receive_json_from(timeout=30))["type"] == "hello"
        return communicator

    communicators = await asyncio.gather(*(opened(cookie) for cookie in cookies))
    try:
        request = await sync_to_async(submit_pending)()
        arrivals = await asyncio.gather(*(c.receive_json_from(timeout=10) for c in communicators))
        assert [(event["type"], event["card"]["id"]) for event in arrivals] == [("added", str(request.id))] * 150
    finally:
        await asyncio.gather(*(c.disconnect() for c in communicators))
