"""What a reviewer decided on, kept in the decision record: a documented shape of its own.

Not the queue card: the card is UI and changes with it; this is evaluation data and stays
``countersign.decision-record/v1``-valid whatever the queue shows. It is the request at the
revision the decision applied to (the one the reviewer saw when they sent it), built from
the row in hand when the decision wins, so it costs no query.

Shape (``request`` in decision-record/v1; every key always present):
  id, revision, action_type, agent, summary, params, evidence ([{title, url, excerpt}], all
  of it, as submitted), confidence, context, trace_id, mode, risk, policy (pattern, or null
  for the default), policy_version, verdict_reason, required_approvals, reviewer_group,
  submitted_at, expires_at.
"""

from __future__ import annotations

from typing import Any

from core.timefmt import isoformat

from .models import ActionRequest


def _evidence_item(item: Any) -> dict[str, str]:
    item = item if isinstance(item, dict) else {"excerpt": item}
    return {key: str(item.get(key, "")) for key in ("title", "url", "excerpt")}


def decision_snapshot(request: ActionRequest, *, revision: int) -> dict[str, Any]:
    """The request as it stood at ``revision``. Expects ``agent`` (and ``reviewer_group`` if routed) loaded."""
    context = request.context if isinstance(request.context, dict) else {}
    return {
        "id": str(request.pk),
        "revision": revision,
        "action_type": request.action_type,
        "agent": request.agent.name,
        "summary": request.summary,
        "params": request.params,
        "evidence": [_evidence_item(item) for item in request.evidence or []],
        "confidence": request.confidence,
        "context": context,
        "trace_id": str(context.get("trace_id", "")),
        "mode": request.mode,
        "risk": request.risk,
        "policy": request.policy_pattern or None,
        "policy_version": request.policy_version,
        "verdict_reason": request.verdict_reason,
        "required_approvals": request.required_approvals,
        "reviewer_group": request.reviewer_group.name if request.reviewer_group_id else None,
        "submitted_at": isoformat(request.created_at),
        "expires_at": isoformat(request.expires_at),
    }
