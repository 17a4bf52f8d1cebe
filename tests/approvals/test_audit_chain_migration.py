"""Migration 0015 chains the audit events written before it, in the order they were written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.audit_chain import audit_chain_verify_all
from approvals.models import ActionRequest, AuditEvent

BEFORE = ("approvals", "0014_encrypt_secrets")


@pytest.mark.django_db(transaction=True)
def test_the_migration_chains_existing_events_in_the_order_they_were_written_and_sets_each_head():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    agent = old.get_model("approvals", "Agent").objects.create(name="old-bot")
    OldRequest = old.get_model("approvals", "ActionRequest")
    OldEvent = old.get_model("approvals", "AuditEvent")
    now = timezone.now()
    fields = {
        "agent": agent,
        "action_type": "send_external_email",
        "summary": "s",
        "request_hash": "0" * 64,
        "status": "pending",
        "mode": "approve",
        "risk": "high",
        "verdict_reason": "r",
        "approval_ttl_seconds": 900,
    }
    # More requests than one batch of the backfill (200), some with no events at all.
    requests = [OldRequest.objects.create(**fields) for _ in range(205)]
    for index, request in enumerate(requests[:203]):
        # Written out of order on purpose: the chain follows created_at, not the insert order.
        written = [("escalated", 30), ("submitted", 0)] + ([("approved", 60)] if index % 2 else [])
        for kind, seconds in written:
            OldEvent.objects.create(
                request=request,
                kind=kind,
                actor_kind="system",
                data={"float": 1.0, "n": index},
                created_at=now + timedelta(seconds=seconds),
            )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    first = ActionRequest.objects.get(pk=requests[1].pk)
    assert list(AuditEvent.objects.filter(request=first).order_by("position").values_list("position", "kind")) == [
        (1, "submitted"),
        (2, "escalated"),
        (3, "approved"),
    ]
    assert first.audit_length == 3
    assert first.audit_head == AuditEvent.objects.get(request=first, position=3).hash
    assert ActionRequest.objects.get(pk=requests[204].pk).audit_length == 0
    checks = list(audit_chain_verify_all())
    assert len(checks) == 205
    assert all(check.ok for check in checks), [str(p) for c in checks for p in c.problems][:5]
    assert sum(check.events for check in checks) == 203 * 2 + 101
