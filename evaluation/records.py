"""A decision as a self-contained evaluation record (schema: evaluation/schemas/decision-record.v1.json)."""

from __future__ import annotations

import re
from typing import Any

from approvals.models import ActionRequest, Decision, Status
from approvals.representation import isoformat

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


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """An RFC 6902 JSON Patch turning ``before`` into ``after``.

    Objects are compared key by key; lists and scalars are replaced as a whole when they
    differ, which keeps the patch readable for reviewers' edits (a changed recipient, a
    rewritten body) and still exact when applied.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key in sorted(before.keys() - after.keys(), key=str):
            ops.append({"op": "remove", "path": f"{path}/{_pointer_token(key)}"})
        for key in sorted(after.keys(), key=str):
            child = f"{path}/{_pointer_token(key)}"
            if key not in before:
                ops.append({"op": "add", "path": child, "value": after[key]})
            else:
                ops.extend(json_diff(before[key], after[key], child))
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]


def execution_of(request: ActionRequest) -> dict[str, Any]:
    """What became of an approval. ``execution_status`` (succeeded/failed) is the agent's own
    report where the approvals app records one; read with getattr so this module does not
    depend on that column existing."""
    reported = getattr(request, "execution_status", "") or ""
    outcome = reported or EXECUTION_BY_STATUS.get(request.status, "unknown")
    return {
        "status": request.status,
        "outcome": outcome,
        "executed_at": isoformat(getattr(request, "executed_at", None)),
    }


# Columns a record never reads. Decoding them was most of the work, and of the allocations,
# of a large export: seven JSON columns a row. Reading one of them in decision_record would
# cost a query per record; tests/evaluation/test_export.py counts the queries.
RECORD_DEFERRED = (
    "request__params",
    "request__evidence",
    "request__context",
    "request__final_params",
    "request__execution_result",
    "request__agent__tags",
    "request__agent__action_scopes",
)


def decision_record(decision: Decision) -> dict[str, Any]:
    """One decision, standing alone. Expects ``select_related("request__agent")``, and allows
    ``.defer(*RECORD_DEFERRED)``."""
    request = decision.request
    verdict = decision.verdict or {}
    final_params = decision.final_params
    diff = json_diff(decision.original_params, final_params) if final_params is not None else []
    return {
        "schema": SCHEMA_VERSION,
        "decision_id": decision.pk,
        "request_id": str(request.pk),
        "agent": {"id": str(request.agent_id), "name": request.agent.name},
        "action_type": request.action_type,
        "request": decision.request_snapshot,
        "verdict": {
            "mode": verdict.get("mode", request.mode),
            "risk": verdict.get("risk", request.risk),
            "policy_id": verdict.get("policy_id", request.policy_id),
            "policy_pattern": verdict.get("policy_pattern", request.policy_pattern) or None,
            "policy_version": verdict.get("policy_version", request.policy_version),
            "reason": verdict.get("reason", request.verdict_reason),
        },
        "decision": {
            "outcome": decision.outcome,
            "edited": decision.edited,
            "reason_category": reason_category(decision.reason, decision.reason_category),
            "reason": decision.reason,
            "note": decision.note,
            "reviewer": decision.reviewer_username,
        },
        "original_params": decision.original_params,
        "final_params": final_params,
        "params_diff": diff,
        "timestamps": {
            "submitted_at": isoformat(request.created_at),
            "decided_at": isoformat(decision.decided_at),
            "expires_at": isoformat(request.expires_at),
            "approval_expires_at": isoformat(request.approval_expires_at),
        },
        "seconds_to_decide": decision.seconds_to_decide,
        "execution": execution_of(request),
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
