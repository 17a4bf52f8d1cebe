"""Personal access tokens: shown once, stored hashed, expiring, revocable, read-only, never mixed with agent keys."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from approvals.models import Decision
from reviewers.models import PersonalAccessToken
from reviewers.services import personal_access_token_create
from tests.factories import PendingRequestFactory
from tests.helpers import PASSWORD

from .review_api import bearer_client, post_json, token_client

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r"cs_pat_[A-Za-z0-9_-]{43}")


def create_on_page(client, **fields):
    return client.post("/queue/settings/tokens/", {"name": "my phone", "lifetime_days": "30", **fields})


def test_the_tokens_page_shows_a_new_token_once_and_stores_only_its_hash(client, alice):
    client.force_login(alice)

    created = create_on_page(client)

    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    raw = TOKEN_RE.search(created.content.decode()).group(0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token_hash, prefix FROM reviewers_personalaccesstoken")
        [(stored_hash, prefix)] = cursor.fetchall()
    assert stored_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(prefix) and len(prefix) < 16
    listed = client.get("/queue/settings/tokens/").content.decode()
    assert "my phone" in listed and prefix in listed
    assert raw not in listed


def test_the_queue_header_links_to_the_tokens_page(client, alice):
    client.force_login(alice)

    assert 'href="/queue/settings/tokens/"' in client.get("/queue/").content.decode()


def test_a_token_lives_no_longer_than_the_maximum_lifetime(client, alice, settings):
    settings.COUNTERSIGN_PAT_MAX_LIFETIME_DAYS = 7
    client.force_login(alice)

    refused = create_on_page(client, lifetime_days="8")

    assert refused.status_code == 400
    assert "1 to 7 days" in refused.content.decode()
    assert not PersonalAccessToken.objects.exists()


def test_someone_outside_every_reviewer_group_gets_no_tokens_page(client, charlie):
    client.force_login(charlie)

    assert client.get("/queue/settings/tokens/").status_code == 403
    assert create_on_page(client).status_code == 403


def test_a_token_reads_the_queue_as_its_reviewer_and_records_its_use_at_most_once_a_minute(alice):
    client = token_client(alice)
    token = PersonalAccessToken.objects.get()

    assert client.get("/api/v1/review/queue").status_code == 200
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    client.get("/api/v1/review/queue")
    token.refresh_from_db()
    assert token.last_used_at == first_use
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        client.get("/api/v1/review/queue")
    token.refresh_from_db()
    assert token.last_used_at > first_use


def test_an_expired_token_is_refused_with_token_expired(alice):
    client = token_client(alice, lifetime_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = client.get("/api/v1/review/queue")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


def test_a_revoked_token_is_refused_with_token_revoked(client, alice):
    api = token_client(alice)
    token = PersonalAccessToken.objects.get()
    client.force_login(alice)

    revoked = client.post(f"/queue/settings/tokens/{token.pk}/revoke")

    assert revoked.status_code == 302
    response = api.get("/api/v1/review/queue")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


def test_a_reviewer_cannot_revoke_someone_elses_token(client, alice, bob):
    token_client(bob)
    token = PersonalAccessToken.objects.get()
    client.force_login(alice)

    assert client.post(f"/queue/settings/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_read_only_token_reads_but_every_write_is_refused(alice):
    request = PendingRequestFactory()
    client = token_client(alice, read_only=True)

    assert client.get(f"/api/v1/review/requests/{request.id}").status_code == 200
    writes = [
        post_json(client, f"/api/v1/review/requests/{request.id}/decide", {"decision": "approve", "revision": 0}),
        post_json(
            client, "/api/v1/review/batch", {"decision": "approve", "items": [{"id": str(request.id), "revision": 0}]}
        ),
        client.post(f"/api/v1/review/requests/{request.id}/claim"),
        client.delete(f"/api/v1/review/requests/{request.id}/claim"),
    ]

    assert [r.status_code for r in writes] == [403] * 4
    assert {r.json()["error"]["code"] for r in writes} == {"token_read_only"}
    assert not Decision.objects.exists()


def test_an_unknown_token_is_refused(db):
    response = bearer_client("cs_pat_" + "x" * 43).get("/api/v1/review/queue")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_agent_key_is_refused_on_the_reviewer_api(agent_and_key):
    response = bearer_client(agent_and_key[1]).get("/api/v1/review/queue")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "wrong_token_kind"


def test_a_personal_access_token_is_refused_on_the_agent_api(alice):
    _, raw = personal_access_token_create(user=alice, name="script", lifetime_days=1)

    response = bearer_client(raw).get("/api/v1/actions/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "wrong_token_kind"


def test_no_credentials_is_401_and_a_non_reviewer_token_is_403(charlie):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/review/queue").status_code == 401
    response = token_client(charlie).get("/api/v1/review/queue")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_session_write_needs_its_csrf_token(alice):
    from rest_framework.test import APIClient

    request = PendingRequestFactory()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password=PASSWORD)

    response = post_json(client, f"/api/v1/review/requests/{request.id}/decide", {"decision": "approve", "revision": 0})

    assert response.status_code == 403
    assert not Decision.objects.exists()
