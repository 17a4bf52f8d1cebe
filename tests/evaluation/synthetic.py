"""Fast synthetic history: requests and decisions written straight into their tables, no services.

Django's bulk_create compiles every row's SQL afresh, which made 100,000 decisions take
most of a minute. Here the column values of each distinct case are prepared once, by the
model fields themselves (so a column someone adds with a default is filled in too), and
the rows go in with ``executemany`` in large batches; only the few per-row values (ids,
times, the summary, the snapshot) are prepared per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from approvals.models import ActionRequest, Agent, Decision
from core.inserts import insert_params, insert_statement


@dataclass(frozen=True)
class Case:
    outcome: str = "approved"  # approved | rejected | expired
    edited: bool = False
    reason: str = ""
    seconds: float = 30.0
    reason_category: str = ""


PARAMS = {"to": "customer@example.org", "subject": "Your refund"}
EDITED = {**PARAMS, "subject": "Your refund (edited)"}


class _Table:
    """INSERT for one model; ``row(template, **varying)`` gives a row's parameters."""

    def __init__(self, model: type[models.Model], varying: tuple[str, ...]) -> None:
        self.statement = insert_statement(model, connection.vendor)
        self.sql = self.statement.sql
        self.varying = [(i, f) for i, f in enumerate(self.statement.fields) if f.attname in varying]

    def template(self, obj: models.Model) -> list[Any]:
        return insert_params(obj, self.statement)

    def row(self, template: list[Any], values: dict[str, Any]) -> list[Any]:
        row = list(template)
        for i, f in self.varying:
            row[i] = f.get_db_prep_save(values[f.attname], connection)
        return row


def write_history(
    *,
    agent: Agent,
    action_type: str,
    cases: Iterable[Case],
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
    batch: int = 20_000,
    policy_version: int = 1,
) -> datetime:
    """Write one request (and, unless expired, one decision) per case, decided ``step`` apart.

    A request is submitted ``case.seconds`` before its decision. Returns the next timestamp.
    """
    when = start or timezone.now() - timedelta(days=1)
    requests_table = _Table(ActionRequest, ("id", "summary", "created_at", "expires_at", "decided_at"))
    decisions_table = _Table(Decision, ("request_id", "request_snapshot", "decided_at"))
    templates: dict[Case, tuple[list[Any], list[Any] | None]] = {}
    snapshot = {
        "action_type": action_type,
        "agent": agent.name,
        "params": PARAMS,
        "evidence": [],
        "confidence": 0.9,
    }
    verdict = {
        "mode": "approve",
        "risk": "high",
        "policy_id": None,
        "policy_pattern": action_type,
        "policy_version": policy_version,
        "reason": "Policy sets mode approve.",
    }

    def templates_for(case: Case) -> tuple[list[Any], list[Any] | None]:
        if case not in templates:
            final = (EDITED if case.edited else PARAMS) if case.outcome == "approved" else None
            request = ActionRequest(
                agent=agent,
                action_type=action_type,
                params=PARAMS,
                summary="",
                request_hash="0" * 64,
                status=case.outcome,
                mode="approve",
                risk="high",
                policy_pattern=action_type,
                policy_version=policy_version,
                verdict_reason="Policy sets mode approve.",
                approval_ttl_seconds=900,
                final_params=final,
            )
            decision = Decision(
                request=request,
                outcome=case.outcome,
                edited=case.edited,
                reviewer_username="alice",
                reason_category=case.reason_category,
                reason=case.reason,
                original_params=PARAMS,
                final_params=final,
                request_snapshot={},
                verdict=verdict,
                decided_at=when,
                seconds_to_decide=case.seconds,
            )
            templates[case] = (
                requests_table.template(request),
                None if case.outcome == "expired" else decisions_table.template(decision),
            )
        return templates[case]

    request_rows: list[list[Any]] = []
    decision_rows: list[list[Any]] = []

    def flush() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            if request_rows:
                cursor.executemany(requests_table.sql, request_rows)
            if decision_rows:
                cursor.executemany(decisions_table.sql, decision_rows)
        request_rows.clear()
        decision_rows.clear()

    for n, case in enumerate(cases):
        request_template, decision_template = templates_for(case)
        request_id = uuid.uuid4()
        summary = f"{action_type} #{n}"
        submitted = when - timedelta(seconds=case.seconds)
        expired = case.outcome == "expired"
        request_rows.append(
            requests_table.row(
                request_template,
                {
                    "id": request_id,
                    "summary": summary,
                    "created_at": submitted,
                    "expires_at": when if expired else submitted + timedelta(hours=4),
                    "decided_at": None if expired else when,
                },
            )
        )
        if decision_template is not None:
            decision_rows.append(
                decisions_table.row(
                    decision_template,
                    {
                        "request_id": request_id,
                        "request_snapshot": {**snapshot, "id": str(request_id), "summary": summary},
                        "decided_at": when,
                    },
                )
            )
        when += step
        if len(request_rows) >= batch:
            flush()
    flush()
    if connection.vendor == "postgresql":
        # Fresh bulk-loaded tables have no statistics until autovacuum runs; without them the
        # planner may pick a nested loop over sequential scans for the export's join.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE approvals_actionrequest; ANALYZE approvals_decision")
    return when
