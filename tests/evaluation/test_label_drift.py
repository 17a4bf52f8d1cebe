"""Labels from the review afterwards drive the drift machinery (issue 15): flagged rate up, the same flag in a row."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import AfterReviewLabel
from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import AlertKind, AlertStatus, DriftAlert
from tests.factories import AgentFactory, PendingRequestFactory

pytestmark = pytest.mark.django_db

SMALL = DriftConfig(recent_window=40, baseline_size=200, min_baseline=100)


def labels(agent, flags_and_categories, *, start):
    """One log request per (label, category), labelled a minute apart from ``start``, oldest first."""
    for index, (label, category) in enumerate(flags_and_categories):
        request = PendingRequestFactory(
            agent=agent, action_type="update_crm", mode="log", status="allowed", after_review="labelled"
        )
        AfterReviewLabel.objects.create(
            request=request,
            label=label,
            reason_category=category,
            reviewer_username="alice",
            labelled_at=start + timedelta(minutes=index),
        )


def test_three_flags_of_the_same_kind_in_a_row_alert_and_a_fine_label_ends_the_streak(settings):
    settings.COUNTERSIGN_FLAG_STREAK = 3
    agent = AgentFactory(name="crm-bot")
    start = timezone.now() - timedelta(hours=2)
    labels(agent, [("fine", "")] + [("should_have_asked", "wrong_recipient")] * 3, start=start)

    drift_detect(config=SMALL)

    [alert] = DriftAlert.objects.filter(kind=AlertKind.FLAG_STREAK)
    assert "flagged 3 times in a row afterwards as should_have_asked ('wrong_recipient')" in alert.summary
    labels(agent, [("fine", "")], start=start + timedelta(minutes=10))
    drift_detect(config=SMALL)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_two_flags_in_a_row_or_three_different_ones_do_not_alert(settings):
    settings.COUNTERSIGN_FLAG_STREAK = 3
    agent = AgentFactory(name="crm-bot")
    start = timezone.now() - timedelta(hours=2)
    labels(
        agent,
        [("should_have_asked", "a"), ("should_have_blocked", "a"), ("should_have_asked", "b")],
        start=start,
    )
    drift_detect(config=SMALL)
    assert not DriftAlert.objects.filter(kind=AlertKind.FLAG_STREAK).exists()


def test_a_sustained_rise_in_the_flagged_rate_alerts_and_a_stable_one_does_not():
    rng = random.Random(15)
    steady, drifting = AgentFactory(name="steady-bot"), AgentFactory(name="drifting-bot")
    start = timezone.now() - timedelta(days=3)

    def history(rate, n):
        return [
            ("should_have_asked", f"c{rng.randint(1, 9)}") if rng.random() < rate else ("fine", "") for _ in range(n)
        ]

    labels(steady, history(0.05, 240), start=start)
    labels(drifting, history(0.05, 200) + history(0.45, 40), start=start)

    drift_detect(config=SMALL)

    alerts = DriftAlert.objects.filter(kind=AlertKind.FLAGGED_RATE)
    assert [alert.agent.name for alert in alerts] == ["drifting-bot"]
    assert "runs unattended more often than it should" in alerts[0].summary
