"""bench/e2e.py's statement counts: what the real views run for one decision and one submission."""

from __future__ import annotations

import os
import secrets
from typing import Any

from bench.e2e_load import SUBMIT_APPROVE, SUBMIT_AUTO, body


def queries_per_operation() -> dict[str, int]:
    """Queries the real views run for one decision and one allowed submission (no test transaction)."""
    import json

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from approvals.services import agent_create
    from reviewers.services import reviewer_create

    run = secrets.token_hex(3)
    _, key = agent_create(name=f"bench-count-{run}")
    agent = Client(headers={"Authorization": f"Bearer {key}"})
    reviewer = reviewer_create(username=f"bench-count-{run}", password=secrets.token_urlsafe(12))
    assert get_user_model().objects.filter(pk=reviewer.pk).exists()
    person = Client()
    person.force_login(reviewer)
    person.get("/queue/")  # warm: the session and CSRF cookie exist, as for a reviewer with the page open
    counts = {}
    for kind in (SUBMIT_AUTO, SUBMIT_APPROVE):
        for _ in range(2):  # warm: the key marked used, then its agent remembered (approvals.selectors.agent_keys)
            agent.post("/api/v1/actions/", json.dumps(body(kind)), content_type="application/json")
        with CaptureQueriesContext(connection) as captured:
            response = agent.post("/api/v1/actions/", json.dumps(body(kind)), content_type="application/json")
        assert response.status_code == 201, response.content
        counts[f"submit ({kind})"] = statements(captured)
        created = response.json()
    with CaptureQueriesContext(connection) as captured:
        response = person.post(
            f"/queue/requests/{created['id']}/decide",
            json.dumps({"decision": "approve"}),
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    counts["decide (approve)"] = statements(captured)
    if os.environ.get("COUNTERSIGN_BENCH_SHOW_QUERIES"):
        for query in captured.captured_queries:
            print("   ", query["sql"][:120])
    return counts


# PREPARE runs once per connection (core.prepared), not once per operation.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PREPARE")


def statements(captured: Any) -> int:
    """Queries that do work: BEGIN/COMMIT (logged by Django on PostgreSQL), savepoints and PREPARE are not counted."""
    return sum(1 for query in captured.captured_queries if not query["sql"].startswith(TRANSACTION_CONTROL))
