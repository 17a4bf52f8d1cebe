"""The queue's websocket asks the same second-factor rule as the pages (no Django middleware runs there)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.asgi import application
from reviewers.services import reviewer_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def session_cookie(user, *, verified_with: TOTPDevice | None = None) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    if verified_with is not None:
        session[DEVICE_ID_SESSION_KEY] = verified_with.persistent_id
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def connects(cookie: bytes) -> tuple[bool, int | None]:
    communicator = WebsocketCommunicator(
        application, "/ws/queue/", headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)]
    )
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


def reviewer_with_device(username: str):
    user = reviewer_create(username=username, password="pw-long-enough")
    return user, TOTPDevice.objects.create(user=user, name="app", confirmed=True)


async def test_an_unverified_session_of_a_reviewer_with_a_device_is_refused():
    user, _device = await sync_to_async(reviewer_with_device)("alice")

    connected, code = await connects(await sync_to_async(session_cookie)(user))

    assert not connected
    assert code == 4403


async def test_a_verified_session_connects():
    user, device = await sync_to_async(reviewer_with_device)("alice")

    connected, _ = await connects(await sync_to_async(session_cookie)(user, verified_with=device))

    assert connected


async def test_a_session_verified_with_someone_elses_device_is_refused():
    alice, _ = await sync_to_async(reviewer_with_device)("alice")
    _bob, bobs_device = await sync_to_async(reviewer_with_device)("bob")

    connected, _ = await connects(await sync_to_async(session_cookie)(alice, verified_with=bobs_device))

    assert not connected


async def test_a_reviewer_without_a_device_connects_as_before():
    user = await sync_to_async(reviewer_create)(username="carol", password="pw-long-enough")

    connected, _ = await connects(await sync_to_async(session_cookie)(user))

    assert connected
