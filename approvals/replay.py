"""Past submissions, read for the policy simulation (registered with it in ``ApprovalsConfig.ready``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from policies.evaluation import RequestFacts
from policies.simulation import PastRequest

from .models import ActionRequest


def simulation_history(*, since: datetime | None, limit: int) -> Iterator[PastRequest]:
    """The newest ``limit`` submissions (since ``since``), as the table saw them and as they ended."""
    queryset = ActionRequest.objects.select_related("agent", "decision").order_by("-created_at")
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    for request in queryset[:limit].iterator(chunk_size=500):
        decision = getattr(request, "decision", None) if request.mode == "approve" else None
        yield PastRequest(
            facts=RequestFacts(
                action_type=request.action_type,
                params=request.params if isinstance(request.params, dict) else {},
                context=request.context if isinstance(request.context, dict) else {},
                confidence=request.confidence,
                agent_name=request.agent.name,
                agent_tags=tuple(getattr(request.agent, "tags", None) or ()),
            ),
            mode=request.mode,
            decision_outcome=decision.outcome if decision is not None else None,
        )
