"""Why a transition out of pending was refused, in words the caller can act on."""

from __future__ import annotations

from datetime import datetime

from core.errors import TransitionRefused
from core.timefmt import isoformat

from ..models import ActionRequest, Decision, Status


def transition_refusal(request: ActionRequest, *, now: datetime, verb: str) -> TransitionRefused:
    if request.status == Status.PENDING and request.expires_at and request.expires_at <= now:
        return TransitionRefused(
            f"Too late to {verb}: this request expired at {isoformat(request.expires_at)}.",
            code="request_expired",
            details={"status": Status.EXPIRED, "expires_at": isoformat(request.expires_at)},
        )
    if request.status in {Status.APPROVED, Status.REJECTED, Status.EXECUTED, Status.LAPSED}:
        decision = Decision.objects.filter(request=request).first()
        by = decision.reviewer_username if decision else "another reviewer"
        return TransitionRefused(
            f"Already decided by {by}: this request was {decision.outcome if decision else request.status}.",
            code="already_decided",
            details={"status": request.status, "decided_by": by},
        )
    if request.status == Status.EXPIRED:
        return TransitionRefused(
            f"Too late to {verb}: this request expired at {isoformat(request.expires_at)}.",
            code="request_expired",
            details={"status": request.status},
        )
    if request.status == Status.CANCELLED:
        return TransitionRefused(
            f"Cannot {verb}: the agent cancelled this request.",
            code="request_cancelled",
            details={"status": request.status},
        )
    return TransitionRefused(
        f"Cannot {verb}: the request is {request.status}, not pending.",
        code="not_pending",
        details={"status": request.status},
    )
