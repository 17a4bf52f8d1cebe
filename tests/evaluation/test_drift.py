from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import AlertKind, AlertStatus, DriftAlert
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory

CONFIG = DriftConfig()  # the defaults the README states
BATCH = 10
# The number stated in README.md ("Evaluation data"): a 5% → 40% rejection shift is alerted
# within this many decisions of the shift starting.
DETECTION_BOUND = 60
# The same for time to decision (median 30-90 s → 150-450 s) and expiry rate (2% → 40%).
TIME_DETECTION_BOUND = 60
EXPIRY_DETECTION_BOUND = 60


def _cases(
    rng: random.Random, n: int, rejection_rate: float, *, seconds: tuple[float, float] = (30, 90), expiry_rate=0.0
) -> list[Case]:
    """Decisions taking ``seconds`` (uniform), a share rejected for varied reasons, some expired."""
    out = []
    for _ in range(n):
        took = rng.uniform(*seconds)
        roll = rng.random()
        if roll < expiry_rate:
            out.append(Case(outcome="expired", seconds=took))
        elif roll < expiry_rate + rejection_rate:
            reason = rng.choice(["tone: too blunt", "wrong-recipient: x", "pii: card", "other"])
            out.append(Case(outcome="rejected", reason=reason, seconds=took))
        else:
            out.append(Case(seconds=took))
    return out


def _shift_until_alerted(agent, clock, rng, kind, **shifted) -> tuple[int, object]:
    """Write BATCH shifted decisions at a time, detecting after each; (decisions written, alert)."""
    written = 0
    while written < 500:
        _write(agent, clock, _cases(rng, BATCH, **shifted))
        written += BATCH
        opened = [a for a in drift_detect(config=CONFIG).opened if a.kind == kind]
        if opened:
            return written, opened[0]
    return written, None


@pytest.fixture
def clock():
    return {"t": timezone.now() - timedelta(days=20)}


def _write(agent, clock, cases, action_type="send_email"):
    clock["t"] = write_history(
        agent=agent, action_type=action_type, cases=cases, start=clock["t"], step=timedelta(seconds=60)
    )


@pytest.mark.slow
def test_ten_thousand_stable_decisions_raise_no_alert(agent, clock):
    rng = random.Random(6)
    alerts_seen = 0
    for _ in range(10_000 // 100):
        # Every check sees stable data: 5% rejected, 2% expired, 30-90 s to decide.
        _write(agent, clock, _cases(rng, 100, 0.05, expiry_rate=0.02))
        run = drift_detect(config=CONFIG)
        alerts_seen += len(run.opened)
    assert alerts_seen == 0
    assert not DriftAlert.objects.exists()


def test_time_to_decision_degradation_is_alerted_within_the_bound(agent, clock):
    rng = random.Random(17)
    _write(agent, clock, _cases(rng, 1000, 0.05))
    assert drift_detect(config=CONFIG).opened == []
    written, alert = _shift_until_alerted(
        agent, clock, rng, AlertKind.TIME_TO_DECISION, rejection_rate=0.05, seconds=(150, 450)
    )
    print(f"\ntime to decision 30-90 s → 150-450 s alerted after {written} shifted decisions")
    assert alert is not None
    assert written <= TIME_DETECTION_BOUND
    assert alert.details["baseline_p50_seconds"] < 90 <= alert.details["recent_p50_seconds"]
    assert len(alert.decision_ids) == min(50, CONFIG.recent_window), "the slowest decisions are the evidence"


def test_a_few_slow_decisions_raise_no_time_alert(agent, clock):
    rng = random.Random(18)
    _write(agent, clock, _cases(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, _cases(rng, 5, 0.0, seconds=(20_000, 80_000)) + _cases(rng, 95, 0.05))
    assert drift_detect(config=CONFIG).opened == []


def test_expiry_rate_rising_is_alerted_within_the_bound(agent, clock):
    rng = random.Random(19)
    _write(agent, clock, _cases(rng, 1000, 0.05, expiry_rate=0.02))
    assert drift_detect(config=CONFIG).opened == []
    written, alert = _shift_until_alerted(
        agent, clock, rng, AlertKind.EXPIRY_RATE, rejection_rate=0.05, expiry_rate=0.4
    )
    print(f"\nexpiry rate 2% → 40% alerted after {written} shifted requests")
    assert alert is not None
    assert written <= EXPIRY_DETECTION_BOUND
    assert alert.details["baseline_rate"] < 0.05


@pytest.mark.slow
def test_rejection_shift_from_5_to_40_percent_is_alerted_within_the_bound(agent, clock):
    rng = random.Random(7)
    _write(agent, clock, _cases(rng, 2000, 0.05))
    assert drift_detect(config=CONFIG).opened == []
    shifted, alert = _shift_until_alerted(agent, clock, rng, AlertKind.REJECTION_RATE, rejection_rate=0.40)
    print(f"\nrejection shift 5%→40% alerted after {shifted} shifted decisions")
    assert alert is not None
    assert shifted <= DETECTION_BOUND
    assert alert.details["baseline_rate"] < 0.08
    assert alert.decision_ids, "the alert names the decisions behind it"


def test_a_sustained_shift_updates_one_alert_instead_of_repeating_it(agent, clock):
    rng = random.Random(8)
    _write(agent, clock, _cases(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, _cases(rng, 100, 0.6))
    drift_detect(config=CONFIG)
    _write(agent, clock, _cases(rng, 20, 0.6))
    run = drift_detect(config=CONFIG)
    alerts = DriftAlert.objects.filter(kind=AlertKind.REJECTION_RATE)
    assert alerts.count() == 1
    assert alerts.get().times_seen == 2
    assert [a.kind for a in run.updated if a.kind == AlertKind.REJECTION_RATE] == [AlertKind.REJECTION_RATE]


def test_a_single_outlier_raises_nothing(agent, clock):
    rng = random.Random(9)
    _write(agent, clock, _cases(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, [Case(outcome="rejected", reason="never-seen: a strange one", seconds=86_000)])
    _write(agent, clock, [Case()] * 3)
    run = drift_detect(config=CONFIG)
    assert run.opened == []
    assert not DriftAlert.objects.exists()


def test_same_reason_category_k_times_in_a_row_alerts_once(agent, clock):
    _write(agent, clock, [Case()] * 50)
    drift_detect(config=CONFIG)
    _write(agent, clock, [Case(outcome="rejected", reason="wrong-recipient: not the customer")] * CONFIG.reason_streak)
    run = drift_detect(config=CONFIG)
    assert [a.kind for a in run.opened] == [AlertKind.REASON_STREAK]
    assert run.opened[0].details["reason_category"] == "wrong-recipient"
    _write(agent, clock, [Case(outcome="rejected", reason="wrong-recipient: again")])
    assert drift_detect(config=CONFIG).opened == []
    assert DriftAlert.objects.get().times_seen == 2


def test_a_streak_shorter_than_k_raises_nothing(agent, clock):
    _write(agent, clock, [Case()] * 50)
    _write(agent, clock, [Case(outcome="rejected", reason="pii: x")] * (CONFIG.reason_streak - 1))
    assert drift_detect(config=CONFIG).opened == []


def test_a_broken_streak_resolves_its_alert(agent, clock):
    _write(agent, clock, [Case(outcome="rejected", reason="pii: x")] * CONFIG.reason_streak)
    drift_detect(config=CONFIG)
    _write(agent, clock, [Case()])
    drift_detect(config=CONFIG)
    assert DriftAlert.objects.get().status == AlertStatus.RESOLVED


def test_a_new_action_type_alerts_but_the_first_run_only_learns(agent, clock):
    _write(agent, clock, [Case()] * 5)
    assert drift_detect(config=CONFIG).opened == []
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    run = drift_detect(config=CONFIG)
    assert [(a.kind, a.action_type) for a in run.opened] == [(AlertKind.NEW_ACTION_TYPE, "wire_transfer")]
    assert drift_detect(config=CONFIG).opened == []


def test_a_reviewer_acknowledges_an_alert_from_the_dashboard(agent, clock, alice):
    _write(agent, clock, [Case()] * 5)
    drift_detect(config=CONFIG)
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    (alert,) = drift_detect(config=CONFIG).opened
    client = Client()
    client.force_login(alice)
    response = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == alice


def test_an_outsider_cannot_acknowledge(agent, clock, charlie):
    _write(agent, clock, [Case()] * 5)
    drift_detect(config=CONFIG)
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    (alert,) = drift_detect(config=CONFIG).opened
    client = Client()
    client.force_login(charlie)
    assert client.post(f"/dashboard/alerts/{alert.pk}/acknowledge").status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_the_beat_task_runs_detection(agent, clock):
    from evaluation.tasks import detect_drift

    _write(agent, clock, [Case()] * 5)
    assert detect_drift() == 0
