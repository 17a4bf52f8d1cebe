"""The policy simulation replays usage conditions faithfully (issue 13): in time order, on the draft's own verdicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from approvals.models import ActionRequest
from policies.selectors import policy_table_from_rows
from policies.simulation import policy_table_simulate
from tests.factories import AgentFactory, PendingRequestFactory

pytestmark = pytest.mark.django_db

BUDGET_DRAFT = [
    {
        "action_pattern": "issue_refund",
        "mode": "approve",
        "priority": 10,
        "condition": 'usage.sum("params.amount", "24h") + params.amount > 500',
    },
    {"action_pattern": "issue_refund", "mode": "auto"},
]


def refunds(agent, amounts, *, start, step=timedelta(minutes=10)):
    """Refunds that really ran unattended, at start, start + step, ..."""
    for index, amount in enumerate(amounts):
        request = PendingRequestFactory(
            agent=agent, action_type="issue_refund", params={"amount": amount}, mode="auto", status="allowed"
        )
        ActionRequest.objects.filter(pk=request.pk).update(created_at=start + index * step)


def simulate(days=None):
    return policy_table_simulate(table=policy_table_from_rows(BUDGET_DRAFT), days=days)


def test_a_budget_replays_in_time_order_and_holds_the_refunds_past_it():
    refunds(AgentFactory(name="billing-bot"), [100] * 8, start=timezone.now() - timedelta(hours=3))

    [change] = simulate().changes
    assert (change.requests, change.changed, change.transitions) == (8, 3, {"auto->approve": 3})


def test_each_agent_spends_its_own_budget():
    start = timezone.now() - timedelta(hours=3)
    refunds(AgentFactory(name="billing-bot"), [300, 300], start=start)
    refunds(AgentFactory(name="other-bot"), [300, 300], start=start + timedelta(minutes=1))

    [change] = simulate().changes
    assert change.transitions == {"auto->approve": 2}  # the second of each


def test_usage_before_the_replayed_window_still_counts():
    agent = AgentFactory(name="billing-bot")
    refunds(agent, [450], start=timezone.now() - timedelta(days=1, hours=1))  # before the last day, inside 24h of it
    refunds(agent, [100], start=timezone.now() - timedelta(hours=23, minutes=30))

    [change] = simulate(days=1).changes
    assert (change.requests, change.transitions) == (1, {"auto->approve": 1})


def test_requests_the_draft_holds_for_a_human_count_as_the_human_decided_them():
    agent = AgentFactory(name="billing-bot")
    start = timezone.now() - timedelta(hours=3)
    refunds(agent, [400, 200, 100], start=start)
    # 400 auto; 200 -> approve (600 > 500) and counts (it ran); 100 -> 400 + 200 + 100 > 500: approve.
    [change] = simulate().changes
    assert change.transitions == {"auto->approve": 2}
    with override_settings(COUNTERSIGN_USAGE_COUNTS="approved"):
        # Held for a human but never really decided by one (it ran unattended): not counted as approved.
        [change] = simulate().changes
    assert change.transitions == {"auto->approve": 1}
