"""The release gate: replay real submissions against a draft table and count what would change."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from .evaluation import PolicyTable, RequestFacts, evaluate
from .usage import UsageQuery, UsageReader

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
    created_at: datetime | None = None
    status: str = ""
    # Read only to rebuild usage before the replayed window (usage conditions), not reported.
    warmup: bool = False


class HistorySource(Protocol):
    def __call__(self, *, since: datetime | None, limit: int, warmup_seconds: int = 0) -> Iterable[PastRequest]:
        """Past submissions, oldest first: the warm-up ones (``warmup_seconds`` before the oldest replayed), then
        the newest ``limit`` since ``since``."""
        ...


class UsageLedger:
    """Usage as the draft table would have made it: the replayed requests it lets through, by time.

    What counts follows ``COUNTERSIGN_USAGE_COUNTS`` as the live gateway does, with what the
    history can tell: a request the draft lets through counts (``executed``: if it really ran);
    one the draft sends to a human counts as the human really decided it (``allowed`` also counts
    one that never reached a human, as a pending request holds its share); a blocked one never.
    """

    def __init__(self, counts: str) -> None:
        self.counts = counts
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.params: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

    def _counts(self, past: PastRequest, mode: str) -> bool:
        if mode == "block":
            return False
        if self.counts == "executed":
            return past.status == "executed"
        if mode in UNATTENDED:
            return True
        outcome = past.decision_outcome if past.mode == "approve" else None
        if self.counts == "approved":
            return outcome == "approved"
        return outcome != "rejected" and past.status not in ("expired", "cancelled")

    def record(self, past: PastRequest, mode: str) -> None:
        if past.created_at is None or not self._counts(past, mode):
            return
        moment = past.created_at.timestamp()
        for key in ((past.facts.action_type, past.facts.agent_name), (past.facts.action_type, "")):
            self.times[key].append(moment)
            self.params[key].append(past.facts.params)

    def reader(self, past: PastRequest) -> UsageReader:
        return _LedgerReader(self, past)


class _LedgerReader:
    def __init__(self, ledger: UsageLedger, past: PastRequest) -> None:
        self.ledger, self.past = ledger, past

    def usage(self, query: UsageQuery) -> float:
        facts = self.past.facts
        key = (facts.action_type, facts.agent_name if query.scope == "agent" else "")
        times = self.ledger.times.get(key, [])
        now = self.past.created_at.timestamp() if self.past.created_at else float("inf")
        start = bisect.bisect_right(times, now - query.window_seconds)
        if query.kind == "count":
            return float(len(times) - start)
        total = 0.0
        for params in self.ledger.params[key][start:]:
            value: Any = params
            for name in query.field_path:
                value = value.get(name) if isinstance(value, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                total += value
        return total


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
    # Usage conditions are replayed in time order, each reading the usage the draft itself let through.
    queries = {query for policy in table.policies for query in policy.usage_queries}
    ledger = UsageLedger(settings.COUNTERSIGN_USAGE_COUNTS) if queries else None
    warmup_seconds = max((query.window_seconds for query in queries), default=0)
    for past in source(since=since, limit=min(limit or MAX_REPLAYED, MAX_REPLAYED), warmup_seconds=warmup_seconds):
        verdict = evaluate(table=table, request=past.facts, usage=ledger.reader(past) if ledger else None)
        if ledger is not None:
            ledger.record(past, verdict.mode)
        if past.warmup:
            continue
        replayed += 1
        action_type = past.facts.action_type
        change = by_type.get(action_type) or by_type.setdefault(action_type, ActionTypeChange(action_type))
        change.requests += 1
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
