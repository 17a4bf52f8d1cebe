"""Time made visible: pending requests expire or escalate, unused approvals lapse.

Deciding after a deadline is impossible whether or not any of this runs (every decision
checks the clock itself); these only move the status, the queue and the webhook along."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.timefmt import isoformat

from ..models import ActionRequest, Status
from ..notifications import queue_notifications_create
from ._effects import announce_changed, announce_left_queue, announce_moved, audit, webhook_enqueue

SWEEP_BATCH = 500


def request_escalate(request_id: Any, *, now: datetime) -> bool:
    """A pending request whose policy says ``escalate`` goes, once, to the escalation group with a fresh deadline."""
    with transaction.atomic():
        request = (
            ActionRequest.objects.select_related("agent")
            .filter(pk=request_id, status=Status.PENDING, expires_at__lte=now, on_expiry="escalate", escalated_at=None)
            .first()
        )
        if request is None:
            return False
        # The card as it was, for the queue it leaves (its facets: agent, action type, risk, group).
        previous = copy.copy(request)
        won = ActionRequest.objects.filter(
            pk=request.pk, status=Status.PENDING, expires_at__lte=now, escalated_at=None
        ).update(
            escalated_at=now,
            reviewer_group_id=request.escalation_group_id,
            expires_at=now + timedelta(seconds=max(request.pending_ttl_seconds, 1)),
            # A fresh deadline in another group's queue: that group gets its own reminder.
            reminded_at=None,
            revision=F("revision") + 1,
        )
        if not won:
            return False
        request.refresh_from_db()
        audit(
            request,
            kind="escalated",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.PENDING,
            to_status=Status.PENDING,
            data={
                "from_group_id": previous.reviewer_group_id,
                "to_group_id": request.reviewer_group_id,
                "expires_at": isoformat(request.expires_at),
            },
        )
        queue_notifications_create(request=request, kind="new", now=now)
        announce_moved(previous, request)
    return True


def request_expire(request_id: Any, *, now: datetime) -> bool:
    if request_escalate(request_id, now=now):
        return False
    with transaction.atomic():
        won = ActionRequest.objects.filter(pk=request_id, status=Status.PENDING, expires_at__lte=now).update(
            status=Status.EXPIRED, decided_at=now, revision=F("revision") + 1
        )
        if not won:
            return False
        request = ActionRequest.objects.select_related("agent").get(pk=request_id)
        audit(
            request,
            kind="expired",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.PENDING,
            to_status=Status.EXPIRED,
            data={"expires_at": isoformat(request.expires_at)},
        )
        webhook_enqueue(request, now=now)
        announce_left_queue(request, by="expiry")
    return True


def approval_lapse(request_id: Any, *, now: datetime) -> bool:
    with transaction.atomic():
        won = ActionRequest.objects.filter(pk=request_id, status=Status.APPROVED, approval_expires_at__lte=now).update(
            status=Status.LAPSED, revision=F("revision") + 1
        )
        if not won:
            return False
        request = ActionRequest.objects.get(pk=request_id)
        audit(
            request,
            kind="approval_lapsed",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.APPROVED,
            to_status=Status.LAPSED,
            data={"approval_expires_at": isoformat(request.approval_expires_at)},
        )
        announce_changed(request)
    return True


def action_requests_expire_due(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Move pending requests past their deadline to expired, and unused approvals past theirs to lapsed.

    This only makes time visible (status, live queue, webhook): deciding after the
    deadline is already impossible because every decision checks the clock itself.
    """
    now = now or timezone.now()
    expired = 0
    due = ActionRequest.objects.filter(status=Status.PENDING, expires_at__lte=now).order_by("expires_at")
    for request_id in list(due.values_list("pk", flat=True)[:batch]):
        expired += request_expire(request_id, now=now)
    lapsing = ActionRequest.objects.filter(status=Status.APPROVED, approval_expires_at__lte=now)
    for request_id in list(lapsing.values_list("pk", flat=True)[:batch]):
        approval_lapse(request_id, now=now)
    return expired


def action_request_settle_time(request: ActionRequest) -> ActionRequest:
    """Apply any deadline that has passed to this one request, so readers never see a stale 'pending'."""
    now = timezone.now()
    if request.status == Status.PENDING and request.expires_at and request.expires_at <= now:
        request_expire(request.pk, now=now)
        request.refresh_from_db()
    elif request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        approval_lapse(request.pk, now=now)
        request.refresh_from_db()
    return request
