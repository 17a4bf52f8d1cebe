"""Past submissions, read for the policy simulation (registered with it in ``ApprovalsConfig.ready``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from policies.evaluation import RequestFacts
from policies.simulation import PastRequest

from .models import ActionRequest

MAX_WARMUP = 20_000  # the newest rows before the replayed window read to rebuild usage; older ones are not


def simulation_history(*, since: datetime | None, limit: int, warmup_seconds: int = 0) -> Iterator[PastRequest]:
    """The newest ``limit`` submissions (since ``since``), oldest first, as the table saw them and as they ended;
    before them, marked ``warmup``, those of the ``warmup_seconds`` before the oldest (usage conditions)."""
    queryset = ActionRequest.objects.select_related("agent", "decision")
    replayed = queryset.order_by("-created_at")
    if since is not None:
        replayed = replayed.filter(created_at__gte=since)
    replayed_rows = list(replayed[:limit])
    replayed_rows.reverse()
    if warmup_seconds and replayed_rows:
        oldest = replayed_rows[0].created_at
        warmup = list(
            queryset.filter(created_at__gte=oldest - timedelta(seconds=warmup_seconds), created_at__lt=oldest).order_by(
                "-created_at"
            )[:MAX_WARMUP]
        )
        for request in reversed(warmup):
            yield _past(request, warmup=True)
    for request in replayed_rows:
        yield _past(request)


def _past(request: ActionRequest, *, warmup: bool = False) -> PastRequest:
    decision = getattr(request, "decision", None) if request.mode == "approve" else None
    return PastRequest(
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
        created_at=request.created_at,
        status=request.status,
        warmup=warmup,
    )
