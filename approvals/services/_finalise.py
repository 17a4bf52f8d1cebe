"""The final transitions out of pending: a decision (single or quorum) and a cancellation (agent or pause)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F

from core.canonical import canonical_hash as params_hash
from core.canonical import canonical_json
from core.errors import TransitionRefused
from core.inserts import new_row

from ..models import ActionRequest, Decision, DecisionOutcome, Status, Surface
from ..snapshots import decision_snapshot
from ._effects import announce_left_queue, audit, webhook_enqueue
from .refusals import transition_refusal


def finalise_decision(
    *,
    request: ActionRequest,
    now: datetime,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None,
    reason: str,
    note: str,
    seen_revision: int | None,
    votes: list[tuple[str, bool]] | None = None,
    reason_category: str = "",
    surface: str = Surface.WEB,
) -> Decision:
    """The one final transition out of pending: a conditional UPDATE whose row count says who won.

    ``request`` is the row as read for this decision (with ``agent`` and ``reviewer_group``
    loaded). The UPDATE also requires the row to still be at that revision: while a request is
    pending only an escalation changes its revision, so a winning UPDATE proves the row in hand
    is the row decided on, and the result is built from it without reading the row again.

    Call inside a transaction."""
    verb = "approve" if approve else "reject"
    if seen_revision is not None and seen_revision != request.revision:
        # Revisions only grow: the card the reviewer saw is not the row any more.
        raise _changed_or_refused(request, now=now, seen_revision=seen_revision, verb=verb)
    new_status = Status.APPROVED if approve else Status.REJECTED
    chosen_params = (final_params if final_params is not None else request.params) if approve else None
    approval_expires_at = now + timedelta(seconds=request.approval_ttl_seconds) if approve else None
    won = ActionRequest.objects.filter(
        pk=request.pk, status=Status.PENDING, expires_at__gt=now, revision=request.revision
    ).update(
        status=new_status,
        decided_at=now,
        final_params=chosen_params,
        approval_expires_at=approval_expires_at,
        revision=F("revision") + 1,
    )
    if not won:
        read_revision = request.revision
        request.refresh_from_db()
        seen = read_revision if seen_revision is None else seen_revision
        raise _changed_or_refused(request, now=now, seen_revision=seen, verb=verb)

    # Everything the reviewer saw is the revision the decision applied to: the row in hand.
    snapshot = decision_snapshot(request, revision=request.revision)
    request.status = new_status
    request.decided_at = now
    request.final_params = chosen_params
    request.approval_expires_at = approval_expires_at
    request.revision += 1
    edited = bool(
        approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params)
    )
    decision = new_row(
        Decision,
        request=request,
        outcome=DecisionOutcome.APPROVED if approve else DecisionOutcome.REJECTED,
        edited=edited,
        reviewer=reviewer,
        reviewer_username=reviewer.get_username(),
        reason_category=reason_category,
        reason=reason,
        note=note or "",
        original_params=request.params,
        final_params=chosen_params,
        request_snapshot=snapshot,
        verdict={
            "mode": request.mode,
            "risk": request.risk,
            "policy_id": request.policy_id,
            "policy_pattern": request.policy_pattern,
            "policy_version": request.policy_version,
            "reason": request.verdict_reason,
        },
        decided_at=now,
        seconds_to_decide=(now - request.created_at).total_seconds(),
        surface=surface,
    )
    audit(
        request,
        kind="edited_and_approved" if edited else ("approved" if approve else "rejected"),
        now=now,
        actor_kind="reviewer",
        actor_label=reviewer.get_username(),
        from_status=Status.PENDING,
        to_status=new_status,
        data={
            "reason_category": reason_category,
            "reason": reason,
            "note": note,
            "edited": edited,
            "surface": surface,
            "params_hash": params_hash(chosen_params) if approve else None,
            **({"votes": [{"reviewer": r, "approve": a} for r, a in votes]} if votes else {}),
        },
        along=(decision,),
    )
    webhook_enqueue(request, now=now)
    by = reviewer.get_username()
    announce_left_queue(request, by=by)
    return decision


def _changed_or_refused(request: ActionRequest, *, now: datetime, seen_revision: int, verb: str) -> TransitionRefused:
    """Still pending and in time: it changed since it was shown (escalated); otherwise why it left pending."""
    if request.status == Status.PENDING and request.expires_at > now:
        return TransitionRefused(
            "This request changed since you opened it; reload it and decide again.",
            code="request_changed",
            details={"seen_revision": seen_revision, "current_revision": request.revision},
        )
    return transition_refusal(request, now=now, verb=verb)


def finalise_cancellation(
    *, request: ActionRequest, now: datetime, actor_kind: str, actor_label: str, data: dict[str, Any] | None = None
) -> bool:
    """Pending (and not yet expired) to cancelled: a conditional UPDATE whose row count says whether it won.

    The winner writes the audit row and the agent's webhook outbox row and, after commit, takes
    the card off the open queues. The agent withdrawing its request and a pause both end here.
    Call inside a transaction; ``request`` is current either way (updated in hand when it won,
    read again when it lost).
    """
    # Guarded on the revision read too, so a winning UPDATE means the row in hand is the row
    # cancelled; an escalation in between (still pending) is read again and cancelled once more.
    won = 0
    for _ in range(2):
        won = ActionRequest.objects.filter(
            pk=request.pk, status=Status.PENDING, expires_at__gt=now, revision=request.revision
        ).update(status=Status.CANCELLED, decided_at=now, revision=F("revision") + 1)
        if won:
            break
        request.refresh_from_db()
        if request.status != Status.PENDING or request.expires_at <= now:
            break
    if not won:
        return False
    request.status = Status.CANCELLED
    request.decided_at = now
    request.revision += 1
    audit(
        request,
        kind="cancelled",
        now=now,
        actor_kind=actor_kind,
        actor_label=actor_label,
        from_status=Status.PENDING,
        to_status=Status.CANCELLED,
        data=data,
    )
    webhook_enqueue(request, now=now)
    announce_left_queue(request, by=actor_label)
    return True
