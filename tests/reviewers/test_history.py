"""The decided history (/queue/history/) and one request's page (/queue/requests/<id>/)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import (
    ActionRequest,
    AuditEvent,
    Decision,
    Status,
    Vote,
    WebhookAttempt,
    WebhookDelivery,
)
from approvals.services import (
    action_request_cancel,
    action_request_decide,
    action_requests_expire_due,
)
from policies.services import policy_create
from reviewers.selectors import (
    HISTORY_ORDER_INDEX,
    HistoryFilters,
    HistoryPage,
    history_after,
    history_page,
    history_requests,
)
from reviewers.services import reviewer_create
from tests.factories import AgentFactory, PendingRequestFactory
from tests.helpers import submit

pytestmark = pytest.mark.django_db

XSS = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'


# --- helpers ------------------------------------------------------------------------------------


def report(api, request_id: str, outcome: str = "succeeded"):
    action = api.get(f"/api/v1/actions/{request_id}/").json()
    return api.post(
        f"/api/v1/actions/{request_id}/execution",
        data=json.dumps(
            {
                "status": outcome,
                "approval_token": action.get("approval_token"),
                "params_hash": action.get("final_params_hash"),
                "result": {"message_id": "m-1"},
            }
        ),
        content_type="application/json",
    )


def finished(
    *,
    status: str = "approved",
    at: datetime | None = None,
    reviewer: str = "alice",
    reason: str = "",
    reason_category: str = "",
    edited: bool = False,
    reviewer_user=None,
    **fields,
) -> ActionRequest:
    """A finished request written directly (with its Decision unless expired/cancelled/allowed/blocked)."""
    at = at or timezone.now()
    fields.setdefault("created_at", at - timedelta(seconds=90))
    decided = status not in {"allowed", "blocked"}
    request = PendingRequestFactory(
        status=status,
        decided_at=at if decided else None,
        mode="approve" if decided else ("block" if status == "blocked" else "auto"),
        approval_expires_at=at + timedelta(minutes=15) if status in {"approved", "executed", "lapsed"} else None,
        **{k: v for k, v in fields.items() if k != "created_at"},
    )
    # auto_now_add ignores a value passed at creation.
    ActionRequest.objects.filter(pk=request.pk).update(created_at=fields["created_at"])
    request.refresh_from_db()
    if status in {"approved", "rejected", "executed", "lapsed"}:
        outcome = "rejected" if status == "rejected" else "approved"
        Decision.objects.create(
            request=request,
            outcome=outcome,
            edited=edited,
            reviewer=reviewer_user,
            reviewer_username=reviewer,
            reason=reason,
            reason_category=reason_category,
            original_params=request.params,
            final_params=None if outcome == "rejected" else request.params,
            request_snapshot={},
            verdict={},
            decided_at=at,
            seconds_to_decide=90,
        )
    return request


def history_html(client, **params) -> str:
    response = client.get("/queue/history/", params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def row_ids(html: str) -> list[str]:
    return re.findall(r'<li class="history-row[^"]*" data-id="([0-9a-f-]{36})"', html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="\?([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def walk_pages(client, query: str = "") -> list[list[str]]:
    pages = []
    while True:
        response = client.get(f"/queue/history/?{query}")
        assert response.status_code == 200
        html = response.content.decode()
        pages.append(row_ids(html))
        query = next_link(html)
        if query is None:
            return pages


# --- who may look -------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_login(client):
    request = finished()

    for url in ("/queue/history/", f"/queue/requests/{request.pk}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_non_reviewer_is_refused_history_and_request_pages(client, charlie):
    request = finished(summary="secret plan")
    client.force_login(charlie)

    assert client.get("/queue/history/").status_code == 403
    assert client.get(f"/queue/requests/{request.pk}/").status_code == 403


def test_request_routed_to_another_group_is_invisible_to_outsiders(client, alice, finance):
    routed = finished(summary="finance only", reviewer_group=finance.groups.get())
    open_one = finished(summary="for everyone")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(open_one.pk)]
    assert client.get(f"/queue/requests/{routed.pk}/").status_code == 404


def test_request_routed_to_a_group_is_visible_to_its_members(client, finance):
    routed = finished(summary="finance only", reviewer_group=finance.groups.get())
    client.force_login(finance)

    assert row_ids(history_html(client)) == [str(routed.pk)]
    assert client.get(f"/queue/requests/{routed.pk}/").status_code == 200


def test_unknown_request_id_is_404(client, alice):
    client.force_login(alice)

    assert client.get(f"/queue/requests/{uuid.uuid4()}/").status_code == 404


def test_nav_links_reviewers_to_history(client, alice):
    client.force_login(alice)

    assert '<a href="/queue/history/">History</a>' in history_html(client)


# --- what the history lists ---------------------------------------------------------------------


def test_history_lists_every_finished_state_newest_first_and_no_pending(client, alice):
    now = timezone.now()
    states = ["approved", "rejected", "expired", "cancelled", "executed", "lapsed"]
    made = [finished(status=s, at=now - timedelta(minutes=i)) for i, s in enumerate(states)]
    PendingRequestFactory(summary="still pending")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(r.pk) for r in made]


def test_policy_settled_requests_only_behind_the_filter(client, alice):
    reviewed = finished(status="approved")
    allowed = finished(status="allowed")
    blocked = finished(status="blocked")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(reviewed.pk)]
    assert set(row_ids(history_html(client, policy="1"))) == {str(reviewed.pk), str(allowed.pk), str(blocked.pk)}
    assert row_ids(history_html(client, status="blocked")) == [str(blocked.pk)]


def test_row_shows_decider_time_taken_edit_and_reason(client, alice):
    finished(
        status="rejected",
        reason="Wrong customer: this is Jane's ticket",
        reason_category="wrong_recipient",
        at=datetime(2026, 3, 4, 10, 20, tzinfo=UTC),
    )
    finished(status="approved", edited=True, summary="edited one")
    client.force_login(alice)

    html = history_html(client)

    assert "rejected by <strong>alice</strong>" in html
    assert "2026-03-04 10:20 UTC" in html
    assert "took 1 min 30 s" in html
    assert '<span class="tag">Wrong recipient</span> Wrong customer: this is Jane&#x27;s ticket' in html
    assert '<span class="badge edited">edited</span>' in html


def test_executed_and_lapsed_rows_show_what_became_of_the_approval(client, api, alice, default_policies):
    executed_id = submit(api, summary="ran it")["id"]
    action_request_decide(request_id=executed_id, reviewer=alice, approve=True)
    assert report(api, executed_id, "failed").status_code == 200
    lapsed_id = submit(api, summary="never ran")["id"]
    action_request_decide(request_id=lapsed_id, reviewer=alice, approve=True)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        action_requests_expire_due()
    client.force_login(alice)

    html = history_html(client)

    assert ActionRequest.objects.get(pk=lapsed_id).status == Status.LAPSED
    executed_row = html[html.index(f'data-id="{executed_id}"') :]
    assert "executed: failed" in executed_row.split("</li>")[0]
    lapsed_row = html[html.index(f'data-id="{lapsed_id}"') :]
    assert "lapsed: approval expired unused" in lapsed_row.split("</li>")[0]


def test_an_approval_past_its_deadline_shows_lapsed_before_the_sweep_runs(client, alice):
    request = finished(status="approved", at=timezone.now() - timedelta(hours=1))
    client.force_login(alice)

    assert row_ids(history_html(client, status="lapsed")) == [str(request.pk)]
    assert row_ids(history_html(client, status="approved")) == []
    assert "status-lapsed" in history_html(client)


def test_quorum_votes_are_listed_with_the_decision(client, api, admin_user, alice, bob):
    policy_create(
        actor=admin_user,
        data={"action_pattern": "send_external_email", "mode": "approve", "required_approvals": 2},
        change_note="two approvals",
    )
    request_id = submit(api)["id"]
    action_request_decide(request_id=request_id, reviewer=alice, approve=True, note="looks right")
    action_request_decide(
        request_id=request_id, reviewer=bob, approve=False, reason="too early", reason_category="not_needed"
    )
    client.force_login(alice)

    html = history_html(client)

    assert "alice: approve" in html
    assert 'bob: reject <span class="tag">Not needed</span> too early' in html


# --- filters and search -------------------------------------------------------------------------


@pytest.fixture
def varied(alice, bob):
    billing = AgentFactory(name="billing-bot")
    support = AgentFactory(name="support-bot")
    now = timezone.now()
    return {
        "refund": finished(
            agent=billing, action_type="issue_refund", reviewer="bob", reviewer_user=bob, at=now - timedelta(days=3)
        ),
        "email": finished(
            agent=support,
            status="rejected",
            reviewer="alice",
            reviewer_user=alice,
            reason="wrong_data: amount is off by 10x",
            reason_category="wrong_data",
            summary="Tell Jane her refund is on its way",
            at=now - timedelta(days=1),
        ),
        "expired": finished(agent=support, status="expired", action_type="delete_account", at=now),
    }


def ids(*requests) -> list[str]:
    return [str(r.pk) for r in requests]


def test_filter_by_status(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, status="expired")) == ids(varied["expired"])


def test_filter_by_action_type(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, action_type="issue_refund")) == ids(varied["refund"])


def test_filter_by_agent(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, agent="support-bot")) == ids(varied["expired"], varied["email"])


def test_filter_by_reviewer(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, reviewer="bob")) == ids(varied["refund"])


def test_filter_mine(client, alice, bob, varied):
    client.force_login(bob)

    assert row_ids(history_html(client, mine="1")) == ids(varied["refund"])


def test_filter_by_date_range(client, alice, varied):
    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    client.force_login(alice)

    assert row_ids(history_html(client, since=day, until=day)) == ids(varied["email"])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("JANE", ["email"]),  # summary, case-insensitive
        ("delete_acc", ["expired"]),  # action type
        ("billing", ["refund"]),  # agent name
        ("bob", ["refund"]),  # reviewer
        ("off by 10x", ["email"]),  # reason
        ("wrong_data", ["email"]),  # reason category
    ],
)
def test_search(client, alice, varied, q, expected):
    client.force_login(alice)

    assert row_ids(history_html(client, q=q)) == [str(varied[k].pk) for k in expected]


def test_search_by_request_id_full_or_short(client, alice, varied):
    client.force_login(alice)
    target = str(varied["refund"].pk)

    assert row_ids(history_html(client, q=target)) == [target]
    assert row_ids(history_html(client, q=target[:8])) == [target]


def test_search_finds_a_quorum_voter(client, alice, bob, varied):
    request = finished(status="rejected", reviewer="alice")
    Vote.objects.create(
        request=request, reviewer=bob, reviewer_username="bob-the-voter", approve=True, created_at=timezone.now()
    )
    client.force_login(alice)

    assert row_ids(history_html(client, q="the-voter")) == ids(request)


def test_malformed_date_or_status_or_cursor_is_a_400_with_a_message(client, alice):
    client.force_login(alice)

    for params in ({"since": "yesterday"}, {"status": "pending"}, {"cursor": "not-a-cursor"}):
        response = client.get("/queue/history/", params)
        assert response.status_code == 400
        assert 'class="flash error"' in response.content.decode()


# --- pagination ---------------------------------------------------------------------------------


def test_pages_cover_every_row_once_in_order(client, alice):
    start = timezone.now() - timedelta(hours=5)
    # Two rows share each timestamp: the id breaks the tie, so nothing is lost at a page edge.
    made = [finished(at=start + timedelta(minutes=i // 2)) for i in range(121)]
    client.force_login(alice)

    pages = walk_pages(client)

    assert [len(p) for p in pages] == [50, 50, 21]
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(str(r.pk) for r in made)
    assert len(set(seen)) == len(seen)


def test_rows_finishing_between_page_fetches_neither_skip_nor_repeat(client, alice, api, default_policies):
    start = timezone.now() - timedelta(hours=5)
    made = [finished(at=start + timedelta(minutes=i)) for i in range(75)]
    waiting = submit(api, summary="decided while paging")["id"]
    client.force_login(alice)

    first = client.get("/queue/history/").content.decode()
    # Between the two fetches: one request is decided, one more finishes, one is cancelled.
    action_request_decide(request_id=waiting, reviewer=alice, approve=False, reason="no", reason_category="not_needed")
    late = finished()
    cancelled_id = submit(api, summary="cancelled while paging")["id"]
    action_request_cancel(agent=ActionRequest.objects.get(pk=cancelled_id).agent, request_id=cancelled_id)
    second = client.get(f"/queue/history/?{next_link(first)}").content.decode()

    seen = row_ids(first) + row_ids(second)
    assert len(set(seen)) == len(seen) == 75
    assert set(seen) == {str(r.pk) for r in made}
    assert next_link(second) is None
    assert row_ids(history_html(client))[:3] == [cancelled_id, str(late.pk), waiting]


def test_page_keeps_filters_in_its_next_link(client, alice):
    for _ in range(55):
        finished(action_type="issue_refund")
    finished(action_type="other")
    client.force_login(alice)

    pages = walk_pages(client, "action_type=issue_refund")

    assert [len(p) for p in pages] == [50, 5]


def test_history_sql_uses_no_offset_and_no_count(alice):
    for _ in range(5):
        finished()
    first = history_page(user=alice, filters=HistoryFilters(), size=2)

    with CaptureQueriesContext(connection) as queries:
        history_page(user=alice, filters=HistoryFilters(), cursor=first.next_cursor, size=2)

    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql


def seed_rows(n: int, reviewer, *, start: int = 0) -> None:
    """n finished requests, each with its own agent, a decision and a quorum vote: nothing may be queried per row."""
    for i in range(start, start + n):
        request = finished(
            status="rejected", reason="r", reason_category="unsafe", agent=AgentFactory(), reviewer_user=reviewer
        )
        Vote.objects.create(
            request=request,
            reviewer=reviewer,
            reviewer_username=f"v1-{i}",
            approve=False,
            created_at=request.decided_at,
        )


def queries_for_history(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/queue/history/").status_code == 200
    return len(queries.captured_queries)


def test_history_page_issues_the_same_number_of_queries_for_5_or_50_rows(client, alice):
    client.force_login(alice)
    seed_rows(5, alice)
    few = queries_for_history(client)
    seed_rows(45, alice, start=5)
    many = queries_for_history(client)

    assert "v1-49" in history_html(client)
    assert many == few
    assert few <= 8


def page_after(user, pages: int) -> HistoryPage:
    page = history_page(user=user, filters=HistoryFilters())
    for _ in range(pages):
        page = history_page(user=user, filters=HistoryFilters(), cursor=page.next_cursor)
    return page


def test_deep_history_pages_walk_the_finish_time_index(alice):
    """Keyset pages seek into the finish-time index (approvals migration 0007) instead of sorting the table."""
    agent = AgentFactory(name="bulk-bot")
    start = timezone.now() - timedelta(days=30)
    ActionRequest.objects.bulk_create(
        (
            ActionRequest(
                agent=agent,
                action_type=f"action_{i % 20}",
                summary=f"bulk request {i}",
                request_hash="",
                status=("approved", "rejected", "expired", "executed")[i % 4],
                mode="approve",
                risk="high",
                verdict_reason="",
                approval_ttl_seconds=900,
                decided_at=start + timedelta(seconds=i),
            )
            for i in range(5_000)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_actionrequest" if connection.vendor == "postgresql" else "ANALYZE")

    page = page_after(alice, 40)
    deep = history_after(history_requests(user=alice, filters=HistoryFilters(), now=timezone.now()), page.next_cursor)

    assert HISTORY_ORDER_INDEX.name in deep[:51].explain()
    assert page.rows[0]["action"].summary == f"bulk request {5_000 - 1 - 40 * 50}"


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
            AuditEvent.objects.create(request=request, kind=f"k{i}", actor_kind="system", data={"i": i}, created_at=now)
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
    AuditEvent.objects.create(
        request=request,
        kind="submitted",
        actor_kind="agent",
        actor_label=agent.name,
        data={XSS: XSS},
        created_at=timezone.now(),
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
