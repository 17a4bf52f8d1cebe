"""Queue page time with 100,000 pending requests: first page, a page 90,000 cards deep, risk sort, filters.

Printed beside a baseline measured in the same run: the cheapest query that can fill a
page (pending, soonest deadline first, LIMIT 51, no counts, no cards). Keyset pages
should cost the same wherever they are in the queue (the deep/first ratio stays ~1).

Run: .venv/bin/python bench/queue_pages.py [--pending 100000] [--repeat 7]
     DATABASE_URL=postgres://... to measure on PostgreSQL (the database is filled, then emptied).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="countersign-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("COUNTERSIGN_CELERY_EAGER", "true")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from approvals.models import ActionRequest, Agent
    from approvals.selectors import QueueFilters, queue_page
    from reviewers.services import reviewer_create

    call_command("migrate", verbosity=0)
    ActionRequest.objects.all().delete()
    agents = [Agent.objects.get_or_create(name=f"bench-agent-{i}")[0] for i in range(20)]
    reviewer = reviewer_create(username="bench-reviewer", password="bench-password-123")
    now = timezone.now()
    risks = ["low", "medium", "high", "critical"]
    started = time.perf_counter()
    batch = []
    for i in range(args.pending):
        batch.append(
            ActionRequest(
                id=uuid.uuid4(),
                agent=agents[i % len(agents)],
                action_type=f"action_{i % 40}",
                params={"to": f"customer{i}@example.org", "amount": i % 1000},
                evidence=[],
                summary=f"Request {i} for customer {i % 997}",
                context={},
                request_hash="0" * 64,
                status="pending",
                mode="approve",
                risk=risks[(i * 7) % 4],
                verdict_reason="bench",
                approval_ttl_seconds=900,
                expires_at=now + timedelta(hours=1, seconds=i),
            )
        )
        if len(batch) == 5000:
            ActionRequest.objects.bulk_create(batch)
            batch = []
    ActionRequest.objects.bulk_create(batch)
    print(f"{connection.vendor}: {args.pending:,} pending requests written in {time.perf_counter() - started:.1f} s")
    # Fresh planner statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) would leave them.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_actionrequest" if connection.vendor == "postgresql" else "ANALYZE")

    def timed(fn) -> float:
        fn()  # warm up
        samples = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1000

    def baseline() -> None:
        list(ActionRequest.objects.filter(status="pending", expires_at__gt=timezone.now()).order_by("expires_at")[:51])

    def deep_cursor(sort: str) -> str:
        filters = QueueFilters(sort=sort)
        # Walk to ~90% of the queue with one big page, then take the cursor the queue hands out there.
        page = queue_page(user=reviewer, filters=filters, limit=int(args.pending * 0.9))
        return page.next_cursor

    cursors = {sort: deep_cursor(sort) for sort in ("deadline", "risk")}
    cursors["near"] = queue_page(user=reviewer, filters=QueueFilters(), counts=False).next_cursor
    cases = [
        ("baseline: LIMIT 51, no cards, no counts", baseline),
        (
            "next page (load more), by deadline",
            lambda: queue_page(user=reviewer, filters=QueueFilters(), cursor=cursors["near"], counts=False),
        ),
        (
            "next page at 90%, by deadline",
            lambda: queue_page(user=reviewer, filters=QueueFilters(), cursor=cursors["deadline"], counts=False),
        ),
        (
            "next page at 90%, by risk",
            lambda: queue_page(user=reviewer, filters=QueueFilters(sort="risk"), cursor=cursors["risk"], counts=False),
        ),
        ("first page with counts, by deadline", lambda: queue_page(user=reviewer, filters=QueueFilters())),
        ("first page with counts, by risk", lambda: queue_page(user=reviewer, filters=QueueFilters(sort="risk"))),
        (
            "filtered: action type + risk",
            lambda: queue_page(user=reviewer, filters=QueueFilters(action_type="action_7", risk="high")),
        ),
        ("search: 'customer 42'", lambda: queue_page(user=reviewer, filters=QueueFilters(q="customer 42"))),
    ]
    results = {name: timed(fn) for name, fn in cases}
    base = results[cases[0][0]]
    print(f"{'case':42} {'median':>10} {'vs baseline':>12}")
    for name, ms in results.items():
        print(f"{name:42} {ms:8.1f}ms {ms / base:11.1f}x")
    near, deep = results["next page (load more), by deadline"], results["next page at 90%, by deadline"]
    print(f"page at 90% / page 2 (deadline, no counts): {deep / near:.2f}x")
    ActionRequest.objects.filter(agent__in=agents).delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
