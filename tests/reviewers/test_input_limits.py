"""The reviewer doors (decide, batch-decide, the queue's websocket) parse JSON within the same limits."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from approvals.models import Decision, Status
from config.asgi import application
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory


def post_decide(client, request, text: str):
    return client.post(f"/queue/requests/{request.id}/decide", data=text.encode(), content_type="application/json")


def approve_with_params_text(request, params_text: str) -> str:
    body = json.dumps({"decision": "approve", "revision": request.revision, "params": {"x": 1}})
    return body.replace('{"x": 1}', params_text, 1)


def assert_refused_and_still_pending(response, request, *, code: str, path: str) -> None:
    assert response.status_code == 422, response.content[:300]
    error = response.json()["error"]
    assert (error["code"], error["details"]["path"]) == (code, path)
    request.refresh_from_db()
    assert request.status == Status.PENDING
    assert not Decision.objects.filter(request=request).exists()


@pytest.mark.django_db
def test_edited_params_nested_50000_deep_are_refused_and_the_request_stays_pending(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = post_decide(client, request, approve_with_params_text(request, "[" * 50_000 + "]" * 50_000))

    assert_refused_and_still_pending(response, request, code="json_too_deep", path="params" + "[0]" * 63)


@pytest.mark.django_db
def test_edited_params_with_nul_in_a_key_are_refused(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = post_decide(client, request, approve_with_params_text(request, '{"to\\u0000": "x@example.org"}'))

    assert_refused_and_still_pending(response, request, code="invalid_characters", path='params["to\\u0000"]')


@pytest.mark.django_db
def test_edited_params_with_a_lone_surrogate_are_refused(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = post_decide(client, request, approve_with_params_text(request, '{"to": "\\ud800"}'))

    assert_refused_and_still_pending(response, request, code="invalid_characters", path="params.to")


@pytest.mark.django_db
def test_edited_params_with_nan_are_refused(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = post_decide(client, request, approve_with_params_text(request, '{"amount": NaN}'))

    assert_refused_and_still_pending(response, request, code="invalid_number", path="params.amount")


@pytest.mark.django_db
def test_edited_params_with_too_many_keys_or_too_long_a_string_are_refused(client, alice, settings):
    settings.COUNTERSIGN_JSON_MAX_KEYS = 10
    settings.COUNTERSIGN_JSON_MAX_STRING = 256
    request = PendingRequestFactory()
    client.force_login(alice)

    wide = json.dumps({f"k{i}": i for i in range(11)})
    response = post_decide(client, request, approve_with_params_text(request, wide))
    assert_refused_and_still_pending(response, request, code="json_too_large", path="params")

    long = json.dumps({"to": "x" * 257})
    response = post_decide(client, request, approve_with_params_text(request, long))
    assert_refused_and_still_pending(response, request, code="json_too_large", path="params.to")


@pytest.mark.django_db
def test_a_decide_body_that_is_not_json_is_still_a_400(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = post_decide(client, request, "{not json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


@pytest.mark.django_db
def test_a_batch_with_nul_in_the_note_is_refused_and_nothing_is_decided(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)
    body = {"decision": "approve", "items": [{"id": str(request.id), "revision": request.revision}], "note": "a\x00"}

    response = client.post("/queue/batch-decide", data=json.dumps(body), content_type="application/json")

    assert_refused_and_still_pending(response, request, code="invalid_characters", path="note")


# --- the websocket ------------------------------------------------------------------------------------------


def session_cookie_for(user) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def connected_reviewer() -> WebsocketCommunicator:
    alice = await sync_to_async(reviewer_create)(username="alice", password="pw-long-enough")
    headers = [(b"origin", b"http://localhost"), (b"cookie", await sync_to_async(session_cookie_for)(alice))]
    communicator = WebsocketCommunicator(application, "/ws/queue/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("text", "code", "path"),
    [
        # 1,000 deep fits the message size (50,000 deep is over it: closed with 1009, test_websocket_limits).
        ('{"type": "claim", "id": ' + "[" * 1_000 + "]" * 1_000 + "}", "json_too_deep", "id" + "[0]" * 63),
        ('{"type": "claim", "id": "a\\u0000"}', "invalid_characters", "id"),
        ('{"type": "claim", "id": "\\ud800"}', "invalid_characters", "id"),
        ('{"type": "claim", "id": NaN}', "invalid_number", "id"),
        ('{"type": "claim", "id": "' + "x" * 40_000 + '"}', "json_too_large", "id"),
    ],
    ids=["deep", "nul", "surrogate", "nan", "long-string"],
)
async def test_a_websocket_message_over_the_limits_is_answered_with_an_error_and_the_socket_stays_open(
    text, code, path
):
    communicator = await connected_reviewer()

    await communicator.send_to(text_data=text)
    answer = await communicator.receive_json_from(timeout=5)

    assert answer["type"] == "error"
    assert (answer["error"]["code"], answer["error"]["details"]["path"]) == (code, path)
    await communicator.send_json_to({"type": "nonsense"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_websocket_message_that_is_not_json_is_answered_with_malformed_json():
    communicator = await connected_reviewer()

    await communicator.send_to(text_data="{nope")
    answer = await communicator.receive_json_from(timeout=5)

    assert answer["error"]["code"] == "malformed_json"
    await communicator.disconnect()
