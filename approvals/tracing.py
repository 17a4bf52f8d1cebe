"""A request's life as OpenTelemetry spans in its agent's trace: submit, verdict, pending, decision, execution.

Every transition writes one audit event (``services._effects.audit``); after it commits, the
event is turned into spans here. One table of rules, so a new transition is traced where it is
audited, and nothing is traced that did not happen:

- ``submitted``: ``countersign.submit`` with ``countersign.verdict`` beneath it;
- leaving pending (approved, edited and approved, rejected, expired, cancelled):
  ``countersign.pending`` from submission to that moment, with ``countersign.decision`` beneath it;
- ``escalated``: ``countersign.escalation``;
- ``executed``: ``countersign.execution`` from the claimed start (or the approval) to the report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.tracing import SpanRecord, spans_emit, traceparent_for_unlinked

from .models import ActionRequest, AuditEvent, Status

LEFT_PENDING = {Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED}


def _common(request: ActionRequest) -> dict[str, str | int | float | bool]:
    return {
        "countersign.request_id": str(request.pk),
        "countersign.action_type": request.action_type,
        "countersign.agent": request.agent.name,
    }


def _submit_spans(request: ActionRequest, event: AuditEvent, committed_at: datetime) -> list[SpanRecord]:
    verdict = (event.data or {}).get("verdict") or {}
    verdict_attributes = {
        "countersign.mode": request.mode,
        "countersign.risk": request.risk,
        "countersign.reason": request.verdict_reason,
        "countersign.policy": request.policy_pattern,
        "countersign.policy_version": request.policy_version,
    }
    if verdict.get("reason_code"):
        verdict_attributes["countersign.reason_code"] = str(verdict["reason_code"])
    return [
        SpanRecord(
            name="countersign.submit",
            start=request.created_at,
            end=committed_at,
            attributes={**_common(request), "countersign.status": event.to_status},
            children=[
                SpanRecord(
                    name="countersign.verdict",
                    start=request.created_at,
                    end=event.created_at,
                    attributes=verdict_attributes,
                    error="blocked" if event.to_status == Status.BLOCKED else "",
                )
            ],
        )
    ]


def _left_pending_spans(request: ActionRequest, event: AuditEvent) -> list[SpanRecord]:
    data = event.data or {}
    decision: dict[str, str | int | float | bool] = {
        "countersign.outcome": event.to_status,
        "countersign.decided_by": event.actor_label,
        "countersign.actor_kind": event.actor_kind,
    }
    for key in ("surface", "reason_category"):
        if data.get(key):
            decision[f"countersign.{key}"] = str(data[key])
    if "edited" in data:
        decision["countersign.edited"] = bool(data["edited"])
    if "votes" in data:
        decision["countersign.votes"] = len(data["votes"])
    return [
        SpanRecord(
            name="countersign.pending",
            start=request.created_at,
            end=event.created_at,
            attributes={**_common(request), "countersign.outcome": event.to_status},
            children=[
                SpanRecord(
                    name="countersign.decision", start=event.created_at, end=event.created_at, attributes=decision
                )
            ],
        )
    ]


def _execution_spans(request: ActionRequest, event: AuditEvent) -> list[SpanRecord]:
    outcome = str((event.data or {}).get("outcome", ""))
    start = request.execution_started_at or request.decided_at or request.created_at
    return [
        SpanRecord(
            name="countersign.execution",
            start=start,
            end=event.created_at,
            attributes={**_common(request), "countersign.execution_status": outcome},
            error="the agent reported the run failed" if outcome == "failed" else "",
        )
    ]


def spans_for_event(request: ActionRequest, event: AuditEvent, *, committed_at: datetime) -> list[SpanRecord]:
    """What one committed audit event means as spans (none for most events)."""
    if event.kind == "submitted":
        return _submit_spans(request, event, committed_at)
    if event.from_status == Status.PENDING and event.to_status in LEFT_PENDING:
        return _left_pending_spans(request, event)
    if event.kind == "escalated":
        data = event.data or {}
        attributes: dict[str, Any] = {**_common(request)}
        if data.get("to_group_id") is not None:
            attributes["countersign.to_group_id"] = int(data["to_group_id"])
        return [
            SpanRecord(
                name="countersign.escalation", start=event.created_at, end=event.created_at, attributes=attributes
            )
        ]
    if event.kind == "executed":
        return _execution_spans(request, event)
    return []


def trace_event(request: ActionRequest, event: AuditEvent, *, committed_at: datetime) -> None:
    """Write ``event``'s spans into the request's trace (its agent's, or its own)."""
    spans_emit(
        traceparent=request.traceparent or traceparent_for_unlinked(request.pk),
        spans=spans_for_event(request, event, committed_at=committed_at),
    )
