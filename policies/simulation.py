"""The release gate: replay real submissions against a draft table and count what would change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from .evaluation import PolicyTable, RequestFacts, evaluate

MAX_REPLAYED = 10_000
UNATTENDED = frozenset({"auto", "log"})


@dataclass
class ActionTypeChange:
    action_type: str
    requests: int = 0
    changed: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    previously_rejected_now_unattended: int = 0
    previously_approved_now_blocked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_type": self.action_type,
            "requests": self.requests,
            "changed": self.changed,
            "transitions": dict(sorted(self.transitions.items())),
            "previously_rejected_now_unattended": self.previously_rejected_now_unattended,
            "previously_approved_now_blocked": self.previously_approved_now_blocked,
        }

    def sentences(self) -> list[str]:
        lines = []
        for transition, count in sorted(self.transitions.items(), key=lambda kv: -kv[1]):
            before, after = transition.split("->")
            lines.append(f"{count} {self.action_type} would go from {before} to {after}")
        if self.previously_rejected_now_unattended:
            lines.append(
                f"{self.previously_rejected_now_unattended} {self.action_type} previously rejected by humans "
                "would now run unattended"
            )
        return lines


@dataclass
class SimulationReport:
    replayed: int
    since: str | None
    changes: list[ActionTypeChange]

    @property
    def changed(self) -> int:
        return sum(c.changed for c in self.changes)

    @property
    def previously_rejected_now_unattended(self) -> int:
        return sum(c.previously_rejected_now_unattended for c in self.changes)

    def summary(self) -> list[str]:
        return [line for change in self.changes for line in change.sentences()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "since": self.since,
            "changed": self.changed,
            "previously_rejected_now_unattended": self.previously_rejected_now_unattended,
            "by_action_type": [c.as_dict() for c in self.changes],
            "summary": self.summary(),
        }


def policy_table_simulate(*, table: PolicyTable, days: int | None = None, limit: int | None = None) -> SimulationReport:
    """Evaluate the last ``days`` days (or the last ``limit`` requests) of real submissions against ``table``.

    Reads only; bounded to MAX_REPLAYED requests. A request counts as changed when
    the draft would give it a different mode from the one it actually got.
    """
    from approvals.models import ActionRequest

    queryset = ActionRequest.objects.select_related("agent", "decision").order_by("-created_at")
    since = None
    if days is not None:
        since = timezone.now() - timedelta(days=days)
        queryset = queryset.filter(created_at__gte=since)
    queryset = queryset[: min(limit or MAX_REPLAYED, MAX_REPLAYED)]

    by_type: dict[str, ActionTypeChange] = {}
    replayed = 0
    for request in queryset.iterator(chunk_size=500):
        replayed += 1
        change = by_type.get(request.action_type) or by_type.setdefault(
            request.action_type, ActionTypeChange(request.action_type)
        )
        change.requests += 1
        verdict = evaluate(
            table=table,
            request=RequestFacts(
                action_type=request.action_type,
                params=request.params if isinstance(request.params, dict) else {},
                context=request.context if isinstance(request.context, dict) else {},
                confidence=request.confidence,
                agent_name=request.agent.name,
                agent_tags=tuple(getattr(request.agent, "tags", None) or ()),
            ),
        )
        if verdict.mode == request.mode:
            continue
        change.changed += 1
        key = f"{request.mode}->{verdict.mode}"
        change.transitions[key] = change.transitions.get(key, 0) + 1
        decision = getattr(request, "decision", None) if request.mode == "approve" else None
        if decision is not None and decision.outcome == "rejected" and verdict.mode in UNATTENDED:
            change.previously_rejected_now_unattended += 1
        if decision is not None and decision.outcome == "approved" and verdict.mode == "block":
            change.previously_approved_now_blocked += 1
    changes = sorted(by_type.values(), key=lambda c: (-c.changed, c.action_type))
    return SimulationReport(replayed=replayed, since=since.isoformat() if since else None, changes=changes)
