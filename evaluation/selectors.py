"""Reads over decisions and requests: export filters, the cursor, metrics over a window."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from approvals.models import (
    PAUSED_ACTION_TYPE,
    PAUSED_AGENT,
    PAUSED_VERDICT,
    ActionRequest,
    Decision,
    DecisionOutcome,
    Status,
    Surface,
)
from core.cursors import cursor_decode, cursor_encode
from core.errors import InvalidInput
from core.timefmt import parse_utc
from policies.models import Mode

from .records import _CATEGORY_RE, UNCATEGORISED

DECISION_VALUES = ("approved", "rejected", "edited", "approved_unedited")


@dataclass(frozen=True)
class DecisionFilters:
    since: datetime | None = None
    until: datetime | None = None
    action_type: str | None = None
    agent: str | None = None
    decision: str | None = None
    reason_category: str | None = None
    policy_version: int | None = None
    policy: str | None = None


def parse_timestamp(value: str | None, *, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_utc(value.replace(" ", "+"))
    except ValueError:
        raise InvalidInput(
            f"'{name}' must be an ISO-8601 timestamp with a time zone, e.g. 2026-01-31T00:00:00Z."
        ) from None


def decision_filters_from(params: Any) -> DecisionFilters:
    """Validate query parameters (a QueryDict or dict) into filters; bad values raise InvalidInput."""
    decision = params.get("decision") or None
    if decision and decision not in DECISION_VALUES:
        raise InvalidInput(f"'decision' must be one of {', '.join(DECISION_VALUES)}.")
    policy_version = params.get("policy_version") or None
    if policy_version is not None:
        try:
            policy_version = int(policy_version)
        except ValueError:
            raise InvalidInput("'policy_version' must be an integer.") from None
    return DecisionFilters(
        since=parse_timestamp(params.get("since"), name="since"),
        until=parse_timestamp(params.get("until"), name="until"),
        action_type=params.get("action_type") or None,
        agent=params.get("agent") or None,
        decision=decision,
        reason_category=params.get("reason_category") or None,
        policy_version=policy_version,
        policy=params.get("policy") or None,
    )


def decisions_filtered(filters: DecisionFilters) -> QuerySet[Decision]:
    """Decisions in export order: (decided_at, id) ascending, so new decisions land at the end."""
    qs = Decision.objects.select_related("request__agent").order_by("decided_at", "id")
    if filters.since:
        qs = qs.filter(decided_at__gte=filters.since)
    if filters.until:
        qs = qs.filter(decided_at__lt=filters.until)
    if filters.action_type:
        qs = qs.filter(request__action_type=filters.action_type)
    if filters.agent:
        by_name = Q(request__agent__name=filters.agent)
        if re.fullmatch(r"[0-9a-fA-F-]{32,36}", filters.agent):
            by_name |= Q(request__agent_id=filters.agent)
        qs = qs.filter(by_name)
    if filters.decision == "approved":
        qs = qs.filter(outcome=DecisionOutcome.APPROVED)
    elif filters.decision == "rejected":
        qs = qs.filter(outcome=DecisionOutcome.REJECTED)
    elif filters.decision == "edited":
        qs = qs.filter(outcome=DecisionOutcome.APPROVED, edited=True)
    elif filters.decision == "approved_unedited":
        qs = qs.filter(outcome=DecisionOutcome.APPROVED, edited=False)
    if filters.reason_category:
        # The reason_category field, or for rows decided before it existed, the reason's "slug:" prefix.
        legacy = Q(reason_category="")
        if filters.reason_category == UNCATEGORISED:
            qs = qs.filter(legacy).exclude(reason="").exclude(reason__regex=_CATEGORY_RE.pattern)
        else:
            prefix = rf"^\s*{re.escape(filters.reason_category)}\s*:\s*\S"
            qs = qs.filter(Q(reason_category=filters.reason_category) | (legacy & Q(reason__regex=prefix)))
    if filters.policy_version is not None:
        qs = qs.filter(request__policy_version=filters.policy_version)
    if filters.policy:
        qs = qs.filter(request__policy_pattern=filters.policy)
    return qs


# --- the cursor ----------------------------------------------------------------------------
# A cursor is the (decided_at, id) of the last record a page returned. The next page is
# everything strictly after it in that order. Decisions are written with decided_at = now,
# so a decision committed while a client pages sorts after every existing one: pages
# neither skip nor repeat, however many rows arrive between them. (An OFFSET would shift.)


def decision_cursor_encode(decision: Decision) -> str:
    return cursor_encode([decision.decided_at.isoformat(), decision.pk])


def decision_cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        stamp, pk = cursor_decode(cursor)
        when = parse_utc(stamp)
        if not isinstance(pk, int):
            raise ValueError
        return when, pk
    except (ValueError, TypeError):
        raise InvalidInput(
            "'cursor' is not one this API issued; start again without it.", code="invalid_cursor"
        ) from None


def decisions_after(qs: QuerySet[Decision], cursor: str | None) -> QuerySet[Decision]:
    if not cursor:
        return qs
    when, pk = decision_cursor_decode(cursor)
    return qs.filter(Q(decided_at__gt=when) | Q(decided_at=when, id__gt=pk))


# --- metrics --------------------------------------------------------------------------------

GROUP_FIELDS = {"action_type": "action_type", "agent": "agent__name", "policy": "policy_pattern"}


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class MetricsRow:
    key: str
    total: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    escalated: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    expired: int = 0
    blocked: int = 0
    executed: int = 0
    execution_succeeded: int = 0
    execution_failed: int = 0
    never_executed: int = 0
    awaiting_execution: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None

    @property
    def settled(self) -> int:
        """Escalated requests that reached a human outcome or ran out of time."""
        return self.approved + self.rejected + self.expired

    @property
    def escalation_rate(self) -> float | None:
        return _rate(self.escalated, self.total)

    @property
    def approval_rate(self) -> float | None:
        return _rate(self.approved, self.settled)

    @property
    def edit_rate(self) -> float | None:
        return _rate(self.edited, self.settled)

    @property
    def rejection_rate(self) -> float | None:
        return _rate(self.rejected, self.settled)

    @property
    def expiry_rate(self) -> float | None:
        return _rate(self.expired, self.settled)

    @property
    def blocked_rate(self) -> float | None:
        return _rate(self.blocked, self.total)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "total": self.total,
            "by_mode": self.by_mode,
            "escalated": self.escalated,
            "escalation_rate": self.escalation_rate,
            "approved": self.approved,
            "edited": self.edited,
            "rejected": self.rejected,
            "expired": self.expired,
            "approval_rate": self.approval_rate,
            "edit_rate": self.edit_rate,
            "rejection_rate": self.rejection_rate,
            "expiry_rate": self.expiry_rate,
            "blocked": self.blocked,
            "blocked_rate": self.blocked_rate,
            "executed": self.executed,
            "execution_succeeded": self.execution_succeeded,
            "execution_failed": self.execution_failed,
            "never_executed": self.never_executed,
            "awaiting_execution": self.awaiting_execution,
            "p50_seconds_to_decide": self.p50_seconds,
            "p95_seconds_to_decide": self.p95_seconds,
        }


def metrics_by(
    *, group: str, since: datetime, until: datetime, limit: int = 100, action_type: str | None = None
) -> list[MetricsRow]:
    """Per action type, agent or policy, over requests submitted in [since, until).

    Two aggregate queries (counts, then decision times) regardless of the number of groups;
    at most ``limit`` groups, the busiest first, so a page or a scrape stays bounded.
    """
    if group not in GROUP_FIELDS:
        raise InvalidInput(f"'group' must be one of {', '.join(GROUP_FIELDS)}.")
    column = GROUP_FIELDS[group]
    requests = ActionRequest.objects.filter(created_at__gte=since, created_at__lt=until)
    if action_type:
        requests = requests.filter(action_type=action_type)
    aggregates = {
        "total": Count("id"),
        **{f"mode_{mode}": Count("id", filter=Q(mode=mode)) for mode in Mode.values},
        "approved": Count("id", filter=Q(decision__outcome=DecisionOutcome.APPROVED)),
        "edited": Count("id", filter=Q(decision__outcome=DecisionOutcome.APPROVED, decision__edited=True)),
        "rejected": Count("id", filter=Q(status=Status.REJECTED)),
        "expired": Count("id", filter=Q(status=Status.EXPIRED)),
        "blocked": Count("id", filter=Q(status=Status.BLOCKED)),
        "executed": Count("id", filter=Q(status=Status.EXECUTED)),
        "succeeded": Count("id", filter=Q(execution_status="succeeded")),
        "failed": Count("id", filter=Q(execution_status="failed")),
        "never_executed": Count("id", filter=Q(status=Status.LAPSED)),
        "awaiting": Count("id", filter=Q(status__in=[Status.APPROVED])),
    }
    rows = requests.values(column).annotate(**aggregates).order_by("-total", column)[:limit]
    out: dict[str, MetricsRow] = {}
    for row in rows:
        key = row[column] or "(none)"
        out[key] = MetricsRow(
            key=key,
            total=row["total"],
            by_mode={mode: row[f"mode_{mode}"] for mode in Mode.values},
            escalated=row[f"mode_{Mode.APPROVE}"],
            approved=row["approved"],
            edited=row["edited"],
            rejected=row["rejected"],
            expired=row["expired"],
            blocked=row["blocked"],
            executed=row["executed"],
            execution_succeeded=row["succeeded"],
            execution_failed=row["failed"],
            never_executed=row["never_executed"],
            awaiting_execution=row["awaiting"],
        )
    times: dict[str, list[float]] = {key: [] for key in out}
    decision_column = f"request__{column}"
    decided = Decision.objects.filter(request__created_at__gte=since, request__created_at__lt=until)
    if action_type:
        decided = decided.filter(request__action_type=action_type)
    if "(none)" not in out:
        decided = decided.filter(**{f"{decision_column}__in": list(out)})
    for key, seconds in decided.values_list(decision_column, "seconds_to_decide").order_by():
        bucket = times.get(key or "(none)")
        if bucket is not None:
            bucket.append(seconds)
    for key, values in times.items():
        values.sort()
        out[key].p50_seconds = percentile(values, 0.50)
        out[key].p95_seconds = percentile(values, 0.95)
    return list(out.values())


def decision_times_by_surface(*, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per decision surface (web, batch, api, slack, email, push): decisions made in [since, until) and their times.

    ``p50_seconds``/``p95_seconds`` run from submission to decision. Every surface is listed, the
    unused ones with zero decisions, so a team sees which doors its reviewers use.
    """
    times: dict[str, list[float]] = {surface: [] for surface in Surface.values}
    approved: dict[str, int] = dict.fromkeys(Surface.values, 0)
    rows = Decision.objects.filter(decided_at__gte=since, decided_at__lt=until).values_list(
        "surface", "seconds_to_decide", "outcome"
    )
    for surface, seconds, outcome in rows.order_by():
        key = surface if surface in times else Surface.WEB
        times[key].append(seconds)
        approved[key] += outcome == DecisionOutcome.APPROVED
    out = []
    for surface, label in Surface.choices:
        values = sorted(times[surface])
        out.append(
            {
                "surface": surface,
                "label": label,
                "decisions": len(values),
                "approved": approved[surface],
                "p50_seconds": percentile(values, 0.50),
                "p95_seconds": percentile(values, 0.95),
            }
        )
    return out


def paused_submissions(*, since: datetime, until: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """Submissions a pause blocked in [since, until), per agent and action type, the most first.

    One aggregate query over the partial index of paused submissions (approvals' ``paused_submissions``).
    """
    rows = (
        ActionRequest.objects.filter(PAUSED_VERDICT, created_at__gte=since, created_at__lt=until)
        .values("agent__name", "action_type")
        .annotate(
            total=Count("id"),
            agent_paused=Count("id", filter=Q(verdict_reason=PAUSED_AGENT)),
            action_type_paused=Count("id", filter=Q(verdict_reason=PAUSED_ACTION_TYPE)),
        )
        .order_by("-total", "agent__name", "action_type")[:limit]
    )
    return [
        {
            "agent": row["agent__name"],
            "action_type": row["action_type"],
            "total": row["total"],
            "agent_paused": row["agent_paused"],
            "action_type_paused": row["action_type_paused"],
        }
        for row in rows
    ]


def daily_volume(*, since: datetime, until: datetime, action_type: str | None = None) -> list[dict[str, Any]]:
    """Requests per day by outcome, for the over-time chart."""
    from django.db.models.functions import TruncDate

    qs = ActionRequest.objects.filter(created_at__gte=since, created_at__lt=until)
    if action_type:
        qs = qs.filter(action_type=action_type)
    rows = (
        qs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            total=Count("id"),
            escalated=Count("id", filter=Q(mode=Mode.APPROVE)),
            rejected=Count("id", filter=Q(status=Status.REJECTED)),
            blocked=Count("id", filter=Q(status=Status.BLOCKED)),
        )
        .order_by("day")
    )
    return list(rows)
