"""Pauses (the kill switch), agents' limits and the containment counts."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from core.errors import NotFound
from core.timefmt import isoformat

from ..models import (
    ActionRequest,
    Agent,
    ContainmentCount,
    Pause,
    Status,
)

# --- pauses (the kill switch) ---------------------------------------------------------------

PAUSES_LISTED = 200


def pauses_active() -> list[Pause]:
    """Every open pause, oldest first (at most one per agent and one per action type)."""
    return list(Pause.objects.filter(resumed_at__isnull=True).select_related("agent").order_by("paused_at", "id"))


def pauses_recent(*, limit: int = PAUSES_LISTED) -> list[Pause]:
    """Pauses open or lifted, newest first: who paused what, why, and who resumed it."""
    return list(Pause.objects.select_related("agent").order_by("-paused_at", "-id")[:limit])


def pause_as_json(pause: Pause) -> dict[str, Any]:
    """A pause as the staff API, the queue page and its live events show it."""
    return {
        "id": pause.pk,
        "kind": pause.kind,
        "target": pause.target,
        "reason": pause.reason,
        "paused_by": pause.paused_by_label,
        "paused_at": isoformat(pause.paused_at),
        "resumed_by": pause.resumed_by_label or None,
        "resumed_at": isoformat(pause.resumed_at),
    }


def agent_get_by_name(*, name: str) -> Agent:
    try:
        return Agent.objects.get(name=name)
    except Agent.DoesNotExist:
        raise NotFound(f"No agent named {name!r}.") from None


def agent_pending_count(*, agent: Agent) -> int:
    """Requests of ``agent`` waiting for a reviewer now (what its pending cap counts)."""
    return ActionRequest.objects.filter(agent=agent, status=Status.PENDING, expires_at__gt=timezone.now()).count()


def containment_counts(*, since: date | None = None) -> list[dict[str, Any]]:
    """Submissions refused or collapsed, summed by agent name, action type and kind (since ``since``, a day).

    ``[{"agent": name, "action_type": ..., "kind": ..., "count": n}]``, for /metrics and the dashboard.
    """
    rows = ContainmentCount.objects.all()
    if since is not None:
        rows = rows.filter(day__gte=since)
    totals = rows.values("agent__name", "action_type", "kind").annotate(n=Sum("count")).order_by()
    return [
        {"agent": row["agent__name"], "action_type": row["action_type"], "kind": row["kind"], "count": row["n"]}
        for row in totals
    ]
