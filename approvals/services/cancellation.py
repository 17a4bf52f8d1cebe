"""The agent withdraws its own pending request."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import ActionRequest, Agent
from ..selectors import action_request_get_for_agent
from ._finalise import finalise_cancellation
from .refusals import transition_refusal


def action_request_cancel(*, agent: Agent, request_id: Any) -> ActionRequest:
    """The agent withdraws a pending request. Invariant: only pending, unexpired requests are cancelled."""
    request = action_request_get_for_agent(agent=agent, request_id=request_id)
    with transaction.atomic():
        now = timezone.now()
        if not finalise_cancellation(request=request, now=now, actor_kind="agent", actor_label=agent.name):
            raise transition_refusal(request, now=now, verb="cancel")
    return request
