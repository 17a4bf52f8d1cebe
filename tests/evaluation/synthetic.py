"""Fast synthetic history: requests and decisions written with bulk_create, no services."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from approvals.models import ActionRequest, Agent, Decision


@dataclass(frozen=True)
class Case:
    outcome: str = "approved"  # approved | rejected | expired
    edited: bool = False
    reason: str = ""
    seconds: float = 30.0


def write_history(
    *,
    agent: Agent,
    action_type: str,
    cases: Iterable[Case],
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
    batch: int = 5000,
    policy_version: int = 1,
) -> datetime:
    """Write one request (and, unless expired, one decision) per case; returns the next timestamp."""
    when = start or timezone.now() - timedelta(days=1)
    requests: list[ActionRequest] = []
    decisions: list[Decision] = []

    def flush() -> None:
        ActionRequest.objects.bulk_create(requests, batch_size=batch)
        Decision.objects.bulk_create(decisions, batch_size=batch)
        requests.clear()
        decisions.clear()

    for case in cases:
        params = {"to": "customer@example.org", "subject": "Your refund"}
        final = {**params, "subject": "Your refund (edited)"} if case.edited else params
        status = {"approved": "approved", "rejected": "rejected", "expired": "expired"}[case.outcome]
        request = ActionRequest(
            id=uuid.uuid4(),
            agent=agent,
            action_type=action_type,
            params=params,
            summary=f"{action_type} #{len(requests)}",
            request_hash="0" * 64,
            status=status,
            mode="approve",
            risk="high",
            policy_pattern=action_type,
            policy_version=policy_version,
            verdict_reason="Policy sets mode approve.",
            approval_ttl_seconds=900,
            expires_at=when + timedelta(hours=4),
            decided_at=None if case.outcome == "expired" else when,
            final_params=final if case.outcome == "approved" else None,
        )
        requests.append(request)
        if case.outcome != "expired":
            decisions.append(
                Decision(
                    request=request,
                    outcome=case.outcome,
                    edited=case.edited,
                    reviewer_username="alice",
                    reason=case.reason,
                    original_params=params,
                    final_params=final if case.outcome == "approved" else None,
                    request_snapshot={
                        "id": str(request.id),
                        "action_type": action_type,
                        "agent": agent.name,
                        "summary": request.summary,
                        "params": params,
                        "evidence": [],
                        "confidence": 0.9,
                    },
                    verdict={
                        "mode": "approve",
                        "risk": "high",
                        "policy_id": None,
                        "policy_pattern": action_type,
                        "policy_version": policy_version,
                        "reason": "Policy sets mode approve.",
                    },
                    decided_at=when,
                    seconds_to_decide=case.seconds,
                )
            )
        when += step
        if len(requests) >= batch:
            flush()
    flush()
    if connection.vendor == "postgresql":
        # Fresh bulk-loaded tables have no statistics until autovacuum runs; without them the
        # planner may pick a nested loop over sequential scans for the export's join.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE approvals_actionrequest; ANALYZE approvals_decision")
    return when
