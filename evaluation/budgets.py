"""Budgets: each policy whose condition compares usage with a limit, and how much of it each agent has used.

A budget is a policy on one action type whose condition has the shape
``<one usage call> [+ params.…] > N`` (or ``>=``): its limit is N, and an agent's use of it is
the usage call's value now. The dashboard draws one bar per (policy, agent); ``budget_alerts_check``
(a beat task) opens an alert on the existing channels when an agent reaches 80% and again at
100% of a budget, and resolves them when its usage falls back under (the window moves on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from approvals.models import ActionRequest, Agent
from approvals.usage import DatabaseUsage
from policies.evaluation import compile_condition_with_usage, pattern_is_glob
from policies.models import Policy
from policies.usage import UsageQuery

from .models import AlertKind, AlertStatus, DriftAlert
from .notifications import OPENED, alert_notifications_queue

ALERT_LEVELS = (0.8, 1.0)
MAX_AGENTS_PER_BUDGET = 100
_LIMIT = re.compile(r"^(?P<usage>.+?)\s*(?P<op>>=|>)\s*(?P<limit>[0-9]+(?:\.[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Budget:
    policy_id: int
    action_type: str
    mode: str
    query: UsageQuery
    limit: float


@dataclass(frozen=True)
class BudgetUse:
    budget: Budget
    agent: Agent | None  # None: a usage.all budget, shared by every agent
    used: float

    @property
    def fraction(self) -> float:
        return self.used / self.budget.limit if self.budget.limit else 0.0

    @property
    def pct(self) -> int:
        return round(self.fraction * 100)

    @property
    def bar_pct(self) -> int:
        return min(self.pct, 100)


def budget_of(policy: Policy) -> Budget | None:
    """The budget a policy sets, or None when its condition is not a usage limit the dashboard can read."""
    if not policy.enabled or pattern_is_glob(policy.action_pattern):
        return None
    match = _LIMIT.match((policy.condition or "").strip())
    if match is None or any(operator in match.group("usage") for operator in ("<", ">", "=", "!", "&", "|", "?")):
        return None
    try:
        _, queries = compile_condition_with_usage(policy.condition)
    except ValueError:
        return None
    if len(queries) != 1:
        return None
    return Budget(
        policy_id=policy.pk,
        action_type=policy.action_pattern,
        mode=policy.mode,
        query=queries[0],
        limit=float(match.group("limit")),
    )


def budgets_all() -> list[Budget]:
    budgets = (budget_of(policy) for policy in Policy.objects.filter(enabled=True, condition__contains="usage"))
    return sorted((b for b in budgets if b is not None), key=lambda b: (b.action_type, b.policy_id))


def budget_uses(*, now: datetime) -> list[BudgetUse]:
    """Every budget's use now, per agent that used its action type within the budget's window (fullest first)."""
    uses = []
    for budget in budgets_all():
        if budget.query.scope == "all":
            agents: list[Agent | None] = [None]
        else:
            agent_ids = (
                ActionRequest.objects.filter(
                    action_type=budget.action_type,
                    created_at__gt=now - timedelta(seconds=budget.query.window_seconds),
                )
                .values_list("agent_id", flat=True)
                .distinct()[:MAX_AGENTS_PER_BUDGET]
            )
            agents = list(Agent.objects.filter(pk__in=list(agent_ids)).order_by("name"))
        for agent in agents:
            reader = DatabaseUsage(
                agent_id=agent.pk if agent else None,
                action_type=budget.action_type,
                now=now,
                queries=(budget.query,),
            )
            uses.append(BudgetUse(budget=budget, agent=agent, used=reader.usage(budget.query)))
    return sorted(uses, key=lambda use: (-use.fraction, use.budget.action_type))


def _pattern_key(use: BudgetUse, level: float) -> str:
    agent_id = use.agent.pk if use.agent else ""
    return f"{AlertKind.BUDGET}|{use.budget.action_type}|{agent_id}|policy {use.budget.policy_id} at {level:.0%}"


def _summary(use: BudgetUse, level: float) -> str:
    who = use.agent.name if use.agent else "All agents together"
    return (
        f"{who} reached {use.pct}% of the {use.budget.action_type} budget of policy #{use.budget.policy_id} "
        f"({use.budget.query.label()} = {use.used:g} of {use.budget.limit:g}; over it the policy sets "
        f"{use.budget.mode}). Alert level {level:.0%}."
    )


def budget_alerts_check(*, now: datetime) -> list[DriftAlert]:
    """Open an alert for each budget an agent has reached 80% or 100% of; resolve the others (back under)."""
    opened = []
    reached: set[str] = set()
    for use in budget_uses(now=now):
        for level in ALERT_LEVELS:
            if use.fraction < level:
                continue
            pattern_key = _pattern_key(use, level)
            reached.add(pattern_key)
            live = DriftAlert.objects.filter(
                pattern_key=pattern_key, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
            )
            details: dict[str, Any] = {
                "policy_id": use.budget.policy_id,
                "usage": use.budget.query.label(),
                "used": use.used,
                "limit": use.budget.limit,
                "level": level,
            }
            if live.update(last_seen_at=now, details=details):
                continue
            try:
                with transaction.atomic():
                    alert = DriftAlert.objects.create(
                        pattern_key=pattern_key,
                        kind=AlertKind.BUDGET,
                        action_type=use.budget.action_type,
                        agent=use.agent,
                        summary=_summary(use, level)[:500],
                        details=details,
                        decision_ids=[],
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                    alert_notifications_queue(alert=alert, event_type=OPENED, now=now)
            except IntegrityError:  # a concurrent check opened it first: the constraint keeps one
                continue
            opened.append(alert)
    DriftAlert.objects.filter(kind=AlertKind.BUDGET, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]).exclude(
        pattern_key__in=reached
    ).update(status=AlertStatus.RESOLVED, resolved_at=now)
    return opened
