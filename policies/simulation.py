"""The release gate: replay real submissions against a draft table and count what would change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

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


@dataclass(frozen=True)
class PastRequest:
    """One real submission as the simulation replays it: what the table saw, what it said, what a human did."""

    facts: RequestFacts
    mode: str
    decision_outcome: str | None = None


class HistorySource(Protocol):
    def __call__(self, *, since: datetime | None, limit: int) -> Iterable[PastRequest]: ...


_history_source: HistorySource | None = None


def history_source_register(source: HistorySource) -> None:
    """Name where past submissions come from. The app that stores them (approvals) registers it
    when Django starts, so this app reads history without importing the app that depends on it."""
    global _history_source
    _history_source = source


def policy_table_simulate(
    *, table: PolicyTable, days: int | None = None, limit: int | None = None, history: HistorySource | None = None
) -> SimulationReport:
    """Evaluate the last ``days`` days (or the last ``limit`` requests) of real submissions against ``table``.

    Reads only; bounded to MAX_REPLAYED requests, newest first. A request counts as changed
    when the draft would give it a different mode from the one it actually got.
    """
    source = history or _history_source
    if source is None:
        raise RuntimeError("No history source is registered (the approvals app registers one when Django starts).")
    since = timezone.now() - timedelta(days=days) if days is not None else None
    by_type: dict[str, ActionTypeChange] = {}
    replayed = 0
    for past in source(since=since, limit=min(limit or MAX_REPLAYED, MAX_REPLAYED)):
        replayed += 1
        action_type = past.facts.action_type
        change = by_type.get(action_type) or by_type.setdefault(action_type, ActionTypeChange(action_type))
        change.requests += 1
        verdict = evaluate(table=table, request=past.facts)
        if verdict.mode == past.mode:
            continue
        change.changed += 1
        key = f"{past.mode}->{verdict.mode}"
        change.transitions[key] = change.transitions.get(key, 0) + 1
        outcome = past.decision_outcome if past.mode == "approve" else None
        if outcome == "rejected" and verdict.mode in UNATTENDED:
            change.previously_rejected_now_unattended += 1
        if outcome == "approved" and verdict.mode == "block":
            change.previously_approved_now_blocked += 1
    changes = sorted(by_type.values(), key=lambda c: (-c.changed, c.action_type))
    return SimulationReport(replayed=replayed, since=since.isoformat() if since else None, changes=changes)
