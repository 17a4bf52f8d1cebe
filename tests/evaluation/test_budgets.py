"""Budgets on the dashboard and their alerts at 80% and 100% (issue 13)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.services import Submission, action_request_submit, agent_create
from evaluation.budgets import budget_alerts_check, budget_of, budget_uses
from evaluation.models import AlertKind, AlertNotification, AlertStatus, DriftAlert
from policies.models import Policy
from policies.selectors import policy_table_cache_clear
from tests.factories import PolicyFactory

pytestmark = pytest.mark.usefixtures("default_policies")


@pytest.fixture
def budget(db):
    policy = PolicyFactory(
        action_pattern="issue_refund",
        mode="approve",
        priority=100,
        condition='usage.sum("params.amount", "24h") + params.amount > 500',
    )
    PolicyFactory(action_pattern="issue_refund", mode="auto", priority=0)
    policy_table_cache_clear()
    return policy


def refund(agent, amount):
    return action_request_submit(
        agent=agent,
        submission=Submission(action_type="issue_refund", params={"amount": amount}, summary="Refund", evidence=[]),
    ).request


@pytest.mark.parametrize(
    ("condition", "limit"),
    [
        ('usage.sum("params.amount", "24h") + params.amount > 500', 500.0),
        ('usage.count("1m") >= 20', 20.0),
        ('usage.all.count("10m") > 2.5', 2.5),
        ('usage.count("1m") > 20 && params.amount > 3', None),  # not a plain limit
        ('usage.count("1m") + usage.count("1h") > 20', None),  # two usages: no single bar
        ("params.amount > 500", None),
    ],
)
def test_a_budget_is_a_condition_comparing_one_usage_with_a_limit(db, condition, limit):
    policy = PolicyFactory(action_pattern="issue_refund", mode="approve", condition=condition)
    found = budget_of(policy)
    assert (found.limit if found else None) == limit


def test_each_agent_has_a_bar_of_its_use_of_the_budget(budget):
    heavy, _ = agent_create(name="heavy-bot")
    light, _ = agent_create(name="<b>light</b>-bot")
    refund(heavy, 450)
    refund(light, 100)

    uses = budget_uses(now=timezone.now())
    assert [(use.agent.name, use.used, use.pct) for use in uses] == [
        ("heavy-bot", 450, 90),
        ("<b>light</b>-bot", 100, 20),
    ]


def test_the_dashboard_draws_the_budget_bars_with_agent_names_escaped(client, alice, budget):
    light, _ = agent_create(name="<b>light</b>-bot")
    refund(light, 100)
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    assert f'data-policy="{budget.pk}" data-agent="&lt;b&gt;light&lt;/b&gt;-bot"' in html
    assert 'aria-label="20%"' in html
    assert "<b>light</b>" not in html


def test_alerts_open_at_80_and_at_100_percent_once_each_and_resolve_when_usage_falls(settings, budget):
    settings.COUNTERSIGN_ALERT_EMAILS = ["oncall@example.org"]
    agent, _ = agent_create(name="billing-bot")
    refund(agent, 300)
    assert budget_alerts_check(now=timezone.now()) == []

    refund(agent, 150)  # 450 of 500: 90%
    [at_80] = budget_alerts_check(now=timezone.now())
    assert at_80.kind == AlertKind.BUDGET and at_80.agent == agent
    assert "billing-bot reached 90% of the issue_refund budget" in at_80.summary
    assert AlertNotification.objects.filter(alert=at_80, target="oncall@example.org").count() == 1
    assert budget_alerts_check(now=timezone.now()) == []  # still at 90%: the same alert, not a new one

    refund(agent, 100)  # held for a human, and it holds its share: 550 of 500
    [at_100] = budget_alerts_check(now=timezone.now())
    assert "Alert level 100%" in at_100.summary

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert budget_alerts_check(now=timezone.now()) == []
    assert set(DriftAlert.objects.values_list("status", flat=True)) == {AlertStatus.RESOLVED}


def test_a_disabled_budget_draws_nothing_and_alerts_nothing(budget):
    agent, _ = agent_create(name="billing-bot")
    refund(agent, 450)
    Policy.objects.filter(pk=budget.pk).update(enabled=False)
    assert budget_uses(now=timezone.now()) == []
    assert budget_alerts_check(now=timezone.now()) == []


def test_the_dashboard_counts_budget_exceeded_submissions_by_agent_and_action_type(client, alice, budget):
    agent, _ = agent_create(name="billing-bot")
    refund(agent, 450)
    refund(agent, 100)
    refund(agent, 101)  # not 100 again: an identical pending retry would collapse instead
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    row = html.split('<tr class="containment-row">')[1].split("</tr>")[0]
    # agent, action type, then one cell per kind: rate limited, too many pending, collapsed, paused, budget exceeded
    assert row == "<td>billing-bot</td><td>issue_refund</td><td>0</td><td>0</td><td>0</td><td>0</td><td>2</td>"
