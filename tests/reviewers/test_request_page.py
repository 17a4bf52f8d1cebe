"""One request's page (/queue/requests/<id>/), and agent text on it and in the history shown as text, never markup."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import Decision, Vote, WebhookAttempt, WebhookDelivery
from approvals.services import action_request_decide
from approvals.services._effects import audit
from reviewers.services import reviewer_create
from tests.factories import AgentFactory
from tests.helpers import finished, history_html, report, submit

pytestmark = pytest.mark.django_db

XSS = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'

# --- one request's page -------------------------------------------------------------------------


def test_request_page_shows_proposal_verdict_edit_diff_decision_and_execution(client, api, alice, default_policies):
    request_id = submit(
        api,
        params={"to": "jane@customer.example", "subject": "Refund", "cc": "boss@example.org", "amount": 42},
        context={"trace_id": "trace-xyz"},
    )["id"]
    edited = {"to": "jane@customer.example", "subject": "Your refund", "amount": 42, "bcc": "audit@example.org"}
    action_request_decide(request_id=request_id, reviewer=alice, approve=True, final_params=edited, note="polite")
    assert report(api, request_id).status_code == 200
    client.force_login(alice)

    html = client.get(f"/queue/requests/{request_id}/").content.decode()

    assert "<dt>to</dt><dd>jane@customer.example</dd>" in html
    assert "<dt>amount</dt><dd>42</dd>" in html
    assert "<dt>trace_id</dt><dd>trace-xyz</dd>" in html
    assert (
        '<a href="https://tickets.example/42" rel="noopener noreferrer nofollow" target="_blank">Ticket 42</a>' in html
    )
    assert "send_external_email" in html and "Table version" in html
    diff = html[html.index('<table class="diff">') : html.index("</table>", html.index('<table class="diff">'))]
    assert '<tr class="change-removed"><th scope="row">cc</th>' in diff
    assert '<tr class="change-added"><th scope="row">bcc</th>' in diff
    assert (
        '<tr class="change-changed"><th scope="row">subject</th><td>changed</td><td><pre class="before">Refund</pre></td><td><pre class="after">Your refund</pre></td>'
        in diff
    )
    assert "amount" not in diff
    assert '<span class="badge edited">edited</span>' in html
    assert "The agent reported <strong>succeeded</strong>" in html
    assert "&quot;message_id&quot;: &quot;m-1&quot;" in html


def test_request_page_shows_the_audit_trail_in_order_with_violations(client, api, alice, default_policies):
    request_id = submit(api)["id"]
    action_request_decide(request_id=request_id, reviewer=alice, approve=True)
    assert report(api, request_id).status_code == 200
    assert report(api, request_id).status_code == 409  # a second report is a violation
    client.force_login(alice)

    html = client.get(f"/queue/requests/{request_id}/").content.decode()

    kinds = re.findall(r'<strong class="kind">([a-z_]+)</strong>', html)
    assert kinds == ["submitted", "approved", "executed", "violation"]
    assert '<li class="audit-event violation">' in html
    assert "<strong>already_reported</strong> by support-bot" in html
    assert "reviewer: alice" in html and "agent: support-bot" in html


def test_request_page_shows_rejection_category_and_reason(client, api, alice, default_policies):
    request_id = submit(api)["id"]
    action_request_decide(
        request_id=request_id,
        reviewer=alice,
        approve=False,
        reason="Jane is not our customer",
        reason_category="wrong_recipient",
    )
    client.force_login(alice)

    html = client.get(f"/queue/requests/{request_id}/").content.decode()

    assert '<dt>Reason category</dt><dd><span class="tag">Wrong recipient</span></dd>' in html
    assert '<dd class="reason-text">Jane is not our customer</dd>' in html


def test_request_page_lists_webhook_deliveries_and_their_attempts(client, alice):
    request = finished(status="rejected", reason="no")
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        request=request,
        event_type="action.rejected",
        url="https://agent.example/hook",
        payload={},
        state="delivered",
        attempts=2,
        next_attempt_at=now,
        created_at=now,
        delivered_at=now,
    )
    WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, status_code=500, latency_ms=12, error="HTTP 500")
    WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, status_code=200, latency_ms=9)
    client.force_login(alice)

    html = client.get(f"/queue/requests/{request.pk}/").content.decode()

    assert "https://agent.example/hook" in html
    assert "HTTP 500 · 12 ms · HTTP 500" in html
    assert "HTTP 200 · 9 ms" in html


def test_request_page_issues_the_same_number_of_queries_for_few_or_many_events(client, alice):
    few = finished(status="rejected", reason="no")
    many = finished(status="rejected", reason="no")
    now = timezone.now()
    for request, n in ((few, 1), (many, 30)):
        for i in range(n):
            with transaction.atomic():
                audit(request, kind=f"k{i}", now=now, actor_kind="system", actor_label="", data={"i": i})
            Vote.objects.create(
                request=request,
                reviewer=reviewer_create(username=f"v{request.pk.hex[:4]}{i}", password="x"),
                reviewer_username=f"v{i}",
                approve=False,
                created_at=now,
            )
            delivery = WebhookDelivery.objects.create(
                request=request,
                event_type="e",
                url="https://a.example/",
                payload={},
                next_attempt_at=now,
                created_at=now,
            )
            WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, status_code=200)
    client.force_login(alice)

    counts = []
    for request in (few, many):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/queue/requests/{request.pk}/").status_code == 200
        counts.append(len(queries.captured_queries))

    assert counts[0] == counts[1]


# --- untrusted agent text -----------------------------------------------------------------------


@pytest.fixture
def hostile(alice, db):
    agent = AgentFactory(name=f"bot{XSS}")
    request = finished(
        agent=agent,
        status="rejected",
        summary=f"summary {XSS}",
        action_type="send_external_email",
        reason=f"reason {XSS}",
        reason_category="unsafe",
        params={f"key{XSS}": f"value{XSS}", "nested": {"x": XSS}},
        context={"trace_id": XSS},
        evidence=[
            {"title": f"title {XSS}", "url": "javascript:alert(document.cookie)", "excerpt": f"excerpt {XSS}"},
            {"title": "data", "url": "data:text/html,<script>alert(1)</script>", "excerpt": ""},
            {"title": "ok", "url": 'https://example.org/?q="><script>alert(1)</script>', "excerpt": ""},
        ],
    )
    Decision.objects.filter(request=request).update(reason=f"reason {XSS}", note=f"note {XSS}")
    with transaction.atomic():
        audit(
            request, kind="submitted", now=timezone.now(), actor_kind="agent", actor_label=agent.name, data={XSS: XSS}
        )
    return request


def assert_no_live_markup(html: str) -> None:
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html
    assert "<script>alert(1)" not in html
    assert 'href="javascript:' not in html.lower()
    assert 'href="data:' not in html.lower()


def test_agent_text_is_escaped_in_history(client, alice, hostile):
    client.force_login(alice)

    for params in ({}, {"q": "summary"}, {"q": XSS}):
        html = history_html(client, **params)
        assert str(hostile.pk) in html
        assert_no_live_markup(html)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_agent_text_is_escaped_on_the_request_page_and_javascript_urls_are_not_links(client, alice, hostile):
    client.force_login(alice)

    html = client.get(f"/queue/requests/{hostile.pk}/").content.decode()

    assert_no_live_markup(html)
    assert (
        '<span class="unsafe-url" title="Not a web link: shown as text">javascript:alert(document.cookie)</span>'
        in html
    )
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert 'href="https://example.org/?q=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
