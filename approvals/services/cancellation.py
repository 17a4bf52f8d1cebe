"""The agent withdraws its own pending request."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import ActionRequest, Agent, Status
from ..selectors import action_request_get_for_agent
from ._effects import announce_left_queue, audit, webhook_enqueue
from .refusals import transition_refusal


def action_request_cancel(*, agent: Agent, request_id: Any) -> ActionRequest:
    """The agent withdraws a pending request. Invariant: only pending, unexpired requests are cancelled."""
    request = action_request_get_for_agent(agent=agent, request_id=request_id)
    with transaction.atomic():
        now = timezone.now()
        # Guarded on the revision read too, so a winning UPDATE means the row in hand is the row
        # cancelled; an escalation in between (still pending) is read again and cancelled once more.
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
            raise transition_refusal(request, now=now, verb="cancel")
        request.status = Status.CANCELLED
        request.decided_at = now
        request.revision += 1
        audit(
            request,
            kind="cancelled",
            now=now,
            actor_kind="agent",
            actor_label=agent.name,
            from_status=Status.PENDING,
            to_status=Status.CANCELLED,
        )
        webhook_enqueue(request, now=now)
        announce_left_queue(request, by=agent.name)
    return request
