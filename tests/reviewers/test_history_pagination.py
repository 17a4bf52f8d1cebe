"""Paging the decided history: keyset cursors that neither skip nor repeat, no OFFSET or COUNT, flat query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ActionRequest, Vote
from approvals.services import action_request_cancel, action_request_decide
from reviewers.selectors import (
    HISTORY_ORDER_INDEX,
    HistoryFilters,
    HistoryPage,
    history_after,
    history_page,
    history_requests,
)
from tests.factories import AgentFactory
from tests.helpers import finished, history_html, next_link, row_ids, submit, walk_pages

pytestmark = pytest.mark.django_db


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
