"""A decision as a self-contained evaluation record (schema: evaluation/schemas/decision-record.v1.json)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from approvals.models import AfterReviewLabel, Decision, Status
from core.jsondiff import json_diff
from core.timefmt import isoformat

SCHEMA_VERSION = "countersign.decision-record/v1"
UNCATEGORISED = "uncategorised"
# Reviewers categorise a rejection by starting its reason with a slug and a colon:
# "pii: the body quotes the customer's card number". No slug means "uncategorised".
_CATEGORY_RE = re.compile(r"^\s*([a-z][a-z0-9_-]{1,39})\s*:\s*\S")

EXECUTION_BY_STATUS = {
    Status.EXECUTED: "executed",
    Status.LAPSED: "never_executed",
    Status.APPROVED: "awaiting_execution",
    Status.REJECTED: "not_applicable",
}


def reason_category(reason: str, category: str = "") -> str | None:
    """A decision's category: its ``reason_category`` field, else (rows decided before the
    field existed) the slug its reason starts with; None when there is no reason at all."""
    if category:
        return category
    if not reason or not reason.strip():
        return None
    match = _CATEGORY_RE.match(reason)
    return match.group(1) if match else UNCATEGORISED


# Everything a record reads, as ``QuerySet.values()`` names: one list for both ways of building
# one. A large export reads exactly these columns (no model instances, none of the request's
# own JSON columns), which made streaming about twice as fast and allocate far less.
RECORD_VALUES = (
    "id",
    "outcome",
    "edited",
    "reason",
    "reason_category",
    "note",
    "reviewer_username",
    "original_params",
    "final_params",
    "request_snapshot",
    "verdict",
    "decided_at",
    "seconds_to_decide",
    "surface",
    "request_id",
    "request__agent_id",
    "request__agent__name",
    "request__action_type",
    "request__mode",
    "request__risk",
    "request__policy_id",
    "request__policy_pattern",
    "request__policy_version",
    "request__verdict_reason",
    "request__created_at",
    "request__expires_at",
    "request__approval_expires_at",
    "request__status",
    "request__execution_status",
    "request__executed_at",
)


def _values_of(decision: Decision) -> dict[str, Any]:
    row = {}
    for name in RECORD_VALUES:
        value: Any = decision
        for part in name.split("__"):
            value = getattr(value, part)
        row[name] = value
    return row


def decision_record(decision: Decision) -> dict[str, Any]:
    """One decision, standing alone. Expects ``select_related("request__agent")``."""
    return record_from_values(_values_of(decision))


def decision_records(queryset: QuerySet[Decision], *, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Records for a whole queryset, streamed: memory is one chunk of rows, whatever the total."""
    for row in queryset.values(*RECORD_VALUES).iterator(chunk_size=chunk_size):
        yield record_from_values(row)


def record_from_values(row: dict[str, Any]) -> dict[str, Any]:
    """The record from one row of ``values(*RECORD_VALUES)``."""
    verdict = row["verdict"] or {}
    final_params = row["final_params"]
    status = row["request__status"]
    diff = json_diff(row["original_params"], final_params) if final_params is not None else []
    return {
        "schema": SCHEMA_VERSION,
        "decision_id": row["id"],
        "request_id": str(row["request_id"]),
        "agent": {"id": str(row["request__agent_id"]), "name": row["request__agent__name"]},
        "action_type": row["request__action_type"],
        "request": row["request_snapshot"],
        "verdict": {
            "mode": verdict.get("mode", row["request__mode"]),
            "risk": verdict.get("risk", row["request__risk"]),
            "policy_id": verdict.get("policy_id", row["request__policy_id"]),
            "policy_pattern": verdict.get("policy_pattern", row["request__policy_pattern"]) or None,
            "policy_version": verdict.get("policy_version", row["request__policy_version"]),
            "reason": verdict.get("reason", row["request__verdict_reason"]),
        },
        "decision": {
            "outcome": row["outcome"],
            "edited": row["edited"],
            "reason_category": reason_category(row["reason"], row["reason_category"]),
            "reason": row["reason"],
            "note": row["note"],
            "reviewer": row["reviewer_username"],
            "surface": row["surface"],
        },
        "original_params": row["original_params"],
        "final_params": final_params,
        "params_diff": diff,
        "timestamps": {
            "submitted_at": isoformat(row["request__created_at"]),
            "decided_at": isoformat(row["decided_at"]),
            "expires_at": isoformat(row["request__expires_at"]),
            "approval_expires_at": isoformat(row["request__approval_expires_at"]),
        },
        "seconds_to_decide": row["seconds_to_decide"],
        # What became of an approval: the agent's own report (succeeded/failed) when it made one.
        "execution": {
            "status": status,
            "outcome": row["request__execution_status"] or EXECUTION_BY_STATUS.get(status, "unknown"),
            "executed_at": isoformat(row["request__executed_at"]),
        },
    }


CSV_COLUMNS = (
    "decision_id",
    "request_id",
    "agent_name",
    "action_type",
    "mode",
    "policy_pattern",
    "policy_version",
    "outcome",
    "edited",
    "reason_category",
    "reason",
    "note",
    "reviewer",
    "submitted_at",
    "decided_at",
    "seconds_to_decide",
    "execution_outcome",
    "original_params",
    "final_params",
    "params_diff",
    "request",
)


def csv_row(record: dict[str, Any], dumps) -> list[Any]:
    """Flatten a record into CSV_COLUMNS; nested values are JSON-encoded so nothing is lost."""
    return [
        record["decision_id"],
        record["request_id"],
        record["agent"]["name"],
        record["action_type"],
        record["verdict"]["mode"],
        record["verdict"]["policy_pattern"] or "",
        record["verdict"]["policy_version"],
        record["decision"]["outcome"],
        record["decision"]["edited"],
        record["decision"]["reason_category"] or "",
        record["decision"]["reason"],
        record["decision"]["note"],
        record["decision"]["reviewer"],
        record["timestamps"]["submitted_at"],
        record["timestamps"]["decided_at"],
        record["seconds_to_decide"],
        record["execution"]["outcome"],
        dumps(record["original_params"]),
        dumps(record["final_params"]),
        dumps(record["params_diff"]),
        dumps(record["request"]),
    ]


AFTER_REVIEW_SCHEMA = "after-review-record.v1"


def after_review_record(label: AfterReviewLabel) -> dict[str, Any]:
    """A labelled unattended request as evaluation data (schema after-review-record.v1)."""
    request = label.request
    return {
        "schema": AFTER_REVIEW_SCHEMA,
        "request_id": str(request.pk),
        "agent": request.agent.name,
        "agent_version": request.agent_version or None,
        "action_type": request.action_type,
        "mode": request.mode,
        "policy_pattern": request.policy_pattern or None,
        "params": request.params,
        "summary": request.summary,
        "submitted_at": isoformat(request.created_at),
        "execution": request.execution_status or None,
        "audit": {
            "label": label.label,
            "flagged": label.flagged,
            "reason_category": label.reason_category,
            "note": label.note,
            "reviewer": label.reviewer_username,
            "labelled_at": isoformat(label.labelled_at),
            "surface": label.surface,
        },
    }
