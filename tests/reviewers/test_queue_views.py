from __future__ import annotations

import pytest

from approvals.models import Decision, Status
from tests.factories import PendingRequestFactory
from tests.helpers import decide_view

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/queue/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_non_reviewer_sees_nothing(client, charlie):
    PendingRequestFactory(summary="secret plan")
    client.force_login(charlie)

    assert client.get("/queue/").status_code == 403
    assert client.get("/queue/cards.json").status_code == 403


def test_non_reviewer_cannot_decide(client, charlie):
    request = PendingRequestFactory()
    client.force_login(charlie)

    response = decide_view(client, request, decision="approve")

    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == Status.PENDING


def test_queue_lists_pending_requests_soonest_deadline_first(client, alice):
    from datetime import timedelta

    from django.utils import timezone

    later = PendingRequestFactory(summary="later", expires_at=timezone.now() + timedelta(hours=2))
    sooner = PendingRequestFactory(summary="sooner", expires_at=timezone.now() + timedelta(minutes=5))
    PendingRequestFactory(summary="decided", status="approved")
    client.force_login(alice)

    cards = client.get("/queue/cards.json").json()["cards"]

    assert [c["id"] for c in cards] == [str(sooner.id), str(later.id)]


def test_queue_page_embeds_agent_text_only_as_escaped_json(client, alice):
    PendingRequestFactory(summary="</script><script>alert(1)</script>", params={"<img src=x onerror=alert(1)>": "v"})
    client.force_login(alice)

    html = client.get("/queue/").content.decode()

    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "\\u003C/script\\u003E" in html


def test_queue_page_sends_a_strict_content_security_policy(client, alice):
    client.force_login(alice)

    response = client.get("/queue/")

    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "object-src 'none'" in csp
    assert "<script>" not in response.content.decode().replace('<script src="/static/countersign/queue.js" defer>', "")


def test_reviewer_approves_with_edited_params(client, alice):
    request = PendingRequestFactory(params={"to": "wrong@example.org"})
    client.force_login(alice)

    response = decide_view(
        client, request, decision="approve", params={"to": "right@example.org"}, revision=request.revision
    )

    assert response.status_code == 200
    assert response.json() == {"id": str(request.id), "status": "approved", "edited": True}
    assert Decision.objects.get(request=request).final_params == {"to": "right@example.org"}


def test_reject_without_reason_is_refused(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = decide_view(client, request, decision="reject")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "reason_required"


def test_edited_params_must_be_an_object(client, alice):
    request = PendingRequestFactory()
    client.force_login(alice)

    response = decide_view(client, request, decision="approve", params=["x"])

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_params"


def test_second_reviewer_sees_already_decided_by_first(client, alice, bob):
    request = PendingRequestFactory()
    client.force_login(alice)
    decide_view(client, request, decision="approve")
    client.force_login(bob)

    response = decide_view(client, request, decision="reject", reason_category="other", reason="no")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_decided"
    assert "Already decided by alice" in response.json()["error"]["message"]


def test_decide_requires_csrf_token(alice):
    from django.test import Client

    request = PendingRequestFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    response = decide_view(strict, request, decision="approve")

    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == Status.PENDING
