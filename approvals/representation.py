"""How an action request looks to the agent that submitted it (API responses, webhook events)."""

from __future__ import annotations

from typing import Any

from .binding import approval_token, final_params_hash
from .models import ActionRequest, Status

FINAL_PARAMS_STATUSES = {Status.APPROVED, Status.EXECUTED, Status.LAPSED}


def isoformat(value) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def action_request_as_agent_sees_it(request: ActionRequest, *, base_url: str = "") -> dict[str, Any]:
    decision = getattr(request, "_prefetched_decision", None)
    # Only a request held for review (mode "approve") can have a decision: an allowed one that ran has none.
    if (
        decision is None
        and request.mode == "approve"
        and request.status in {Status.APPROVED, Status.REJECTED, Status.EXECUTED, Status.LAPSED}
    ):
        decision = getattr(request, "decision", None)
    final_params: dict[str, Any] | None = None
    if request.status in FINAL_PARAMS_STATUSES:
        final_params = request.final_params
    elif request.status == Status.ALLOWED:
        final_params = request.params
    path = f"{base_url}/api/v1/actions/{request.id}/"
    return {
        "id": str(request.id),
        "action_type": request.action_type,
        "status": request.status,
        "mode": request.mode,
        "risk": request.risk,
        "policy": {
            "id": request.policy_id,
            "action_pattern": request.policy_pattern or None,
            "version": request.policy_version,
        },
        "reason": request.verdict_reason,
        "params": request.params,
        "approved_params": final_params if request.status in FINAL_PARAMS_STATUSES else None,
        "final_params": final_params,
        "edited": bool(decision.edited) if decision else False,
        "decision": (
            {
                "outcome": decision.outcome,
                "reviewer": decision.reviewer_username,
                "reason_category": decision.reason_category or None,
                "reason": decision.reason,
                "note": decision.note,
                "decided_at": isoformat(decision.decided_at),
            }
            if decision
            else None
        ),
        # Execution binding: run exactly these params (this hash), once, before approval_expires_at.
        "final_params_hash": final_params_hash(request),
        "approval_token": approval_token(request) if request.status == Status.APPROVED else None,
        "execution": (
            {
                "status": request.execution_status,
                "result": request.execution_result,
                "executed_at": isoformat(request.executed_at),
            }
            if request.executed_at
            else None
        ),
        "execution_started_at": isoformat(request.execution_started_at),
        "context": request.context,
        "traceparent": request.traceparent or None,
        "created_at": isoformat(request.created_at),
        "expires_at": isoformat(request.expires_at),
        "decided_at": isoformat(request.decided_at),
        "approval_expires_at": isoformat(request.approval_expires_at),
        "links": {
            "self": path,
            "wait": f"{path}wait",
            "cancel": f"{path}cancel/",
            "execution": f"{path}execution",
            "execution_start": f"{path}execution/start",
        },
    }
