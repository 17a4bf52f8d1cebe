"""Drift detection: compare each (action type, agent)'s recent decisions with its own past.

Alerts only on sustained, significant change, because alerts that cry wolf get ignored:

* a rate (rejection, edit, expiry) alerts when, over the last ``recent_window`` cases versus
  up to ``baseline_size`` cases before them, a one-sided two-proportion z-test reaches
  ``z_threshold`` AND the rate rose by at least ``min_effect_points`` percentage points AND
  the newer half of the window alone is still that far above the baseline (the change is
  ongoing, not a burst that already ended). No test runs before ``min_baseline`` baseline
  cases and a full recent window exist, so a single outlier can never alert;
* time to decision alerts when a one-sided Mann-Whitney U test (recent window against the
  baseline, ties corrected) reaches ``z_threshold`` AND the recent median is at least
  ``time_factor`` times the baseline median, in the window and in its newer half alike. A
  median, so a single decision left overnight moves nothing;
* the same rejection reason category ``reason_streak`` times in a row;
* an action type the job has not seen before (the first run only learns the existing ones).

One live alert per pattern (a database constraint): a later detection updates the alert's
counts and evidence rather than opening another. A rate alert resolves when its z falls
below half the threshold (hysteresis, so it does not flap around the threshold).

People are told (signed webhook, email: ``notifications.py``) when an alert opens and when
it gets significantly worse (a rate another ``min_effect_points`` up, a median time another
half again), never on every re-detection. An acknowledged alert that gets significantly worse
is open again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from approvals.models import (
    ActionRequest,
    AfterReviewLabel,
    AfterReviewLabelKind,
    Agent,
    Decision,
    DecisionOutcome,
    Status,
)
from policies.models import Mode

from .models import AlertKind, AlertStatus, DriftAlert, KnownActionType
from .notifications import OPENED, WORSENED, alert_notifications_queue
from .records import reason_category

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=30)
EVIDENCE_IDS = 50


@dataclass(frozen=True)
class DriftConfig:
    recent_window: int = 100
    baseline_size: int = 2000
    min_baseline: int = 200
    z_threshold: float = 4.5
    min_effect_points: int = 10
    reason_streak: int = 5
    time_factor: float = 2.0

    @classmethod
    def from_settings(cls) -> DriftConfig:
        return cls(
            recent_window=settings.COUNTERSIGN_DRIFT_RECENT_WINDOW,
            baseline_size=settings.COUNTERSIGN_DRIFT_BASELINE_SIZE,
            min_baseline=settings.COUNTERSIGN_DRIFT_MIN_BASELINE,
            z_threshold=settings.COUNTERSIGN_DRIFT_Z_THRESHOLD,
            min_effect_points=settings.COUNTERSIGN_DRIFT_MIN_EFFECT_POINTS,
            reason_streak=settings.COUNTERSIGN_DRIFT_REASON_STREAK,
            time_factor=settings.COUNTERSIGN_DRIFT_TIME_FACTOR,
        )


@dataclass
class DriftRun:
    opened: list[DriftAlert] = field(default_factory=list)
    updated: list[DriftAlert] = field(default_factory=list)
    resolved: int = 0
    pairs_checked: int = 0
    notified: int = 0


def two_proportion_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """z for 'rate A > rate B' with the pooled standard error; 0 when undefined."""
    if not n_a or not n_b:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0
    return (hits_a / n_a - hits_b / n_b) / se


@dataclass(frozen=True)
class RateTest:
    fires: bool
    clears: bool
    details: dict[str, Any]


def rate_shift(flags: list[bool], config: DriftConfig) -> RateTest | None:
    """``flags`` newest first. None when there is not yet enough history to judge."""
    w = config.recent_window
    recent, baseline = flags[:w], flags[w : w + config.baseline_size]
    if len(recent) < w or len(baseline) < config.min_baseline:
        return None
    hits_r, hits_b = sum(recent), sum(baseline)
    rate_r, rate_b = hits_r / len(recent), hits_b / len(baseline)
    newer = recent[: w // 2]
    rate_newer = sum(newer) / len(newer)
    z = two_proportion_z(hits_r, len(recent), hits_b, len(baseline))
    effect = config.min_effect_points / 100
    fires = z >= config.z_threshold and rate_r - rate_b >= effect and rate_newer - rate_b >= effect
    return RateTest(
        fires=fires,
        clears=z < config.z_threshold / 2,
        details={
            "recent_rate": round(rate_r, 4),
            "recent_n": len(recent),
            "newer_half_rate": round(rate_newer, 4),
            "baseline_rate": round(rate_b, 4),
            "baseline_n": len(baseline),
            "z": round(z, 2),
            "z_threshold": config.z_threshold,
        },
    )


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def mann_whitney_z(recent: list[float], baseline: list[float]) -> float:
    """z for 'recent values tend to be larger than baseline ones' (normal approximation with
    the tie correction); 0 when every value is the same."""
    n1, n2 = len(recent), len(baseline)
    if not n1 or not n2:
        return 0.0
    combined = sorted([(v, 0) for v in recent] + [(v, 1) for v in baseline])
    n = n1 + n2
    rank_sum_recent = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and combined[j + 1][0] == combined[i][0]:
            j += 1
        midrank = (i + j) / 2 + 1  # ranks are 1-based; tied values share their mean rank
        t = j - i + 1
        tie_term += t**3 - t
        rank_sum_recent += midrank * sum(1 for k in range(i, j + 1) if combined[k][1] == 0)
        i = j + 1
    u = rank_sum_recent - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:
        return 0.0
    return (u - n1 * n2 / 2) / math.sqrt(variance)


def time_shift(seconds: list[float], config: DriftConfig) -> RateTest | None:
    """``seconds`` to decide, newest first. None when there is not yet enough history to judge."""
    w = config.recent_window
    recent, baseline = seconds[:w], seconds[w : w + config.baseline_size]
    if len(recent) < w or len(baseline) < config.min_baseline:
        return None
    median_r, median_b = _median(sorted(recent)), _median(sorted(baseline))
    median_newer = _median(sorted(recent[: w // 2]))
    z = mann_whitney_z(recent, baseline)
    floor = config.time_factor * median_b
    fires = z >= config.z_threshold and median_r > median_b and median_r >= floor and median_newer >= floor
    return RateTest(
        fires=fires,
        clears=z < config.z_threshold / 2,
        details={
            "recent_p50_seconds": round(median_r, 1),
            "newer_half_p50_seconds": round(median_newer, 1),
            "baseline_p50_seconds": round(median_b, 1),
            "recent_n": len(recent),
            "baseline_n": len(baseline),
            "z": round(z, 2),
            "z_threshold": config.z_threshold,
            "time_factor": config.time_factor,
        },
    )


def _measure(kind: str, details: dict[str, Any]) -> float | None:
    """The one number whose growth makes an open alert worth telling people about again."""
    if kind == AlertKind.TIME_TO_DECISION:
        return details.get("recent_p50_seconds")
    if kind in (AlertKind.REJECTION_RATE, AlertKind.EDIT_RATE, AlertKind.EXPIRY_RATE, AlertKind.FLAGGED_RATE):
        return details.get("recent_rate")
    return None


def _significantly_worse(kind: str, before: float | None, now: float | None, config: DriftConfig) -> bool:
    if before is None or now is None:
        return False
    if kind == AlertKind.TIME_TO_DECISION:
        return now >= before * 1.5
    return now - before >= config.min_effect_points / 100


def _raise(
    run: DriftRun,
    *,
    kind: str,
    action_type: str,
    agent: Agent | None,
    summary: str,
    details: dict[str, Any],
    evidence: list[Any],
    now: datetime,
    config: DriftConfig,
    pattern_extra: str = "",
) -> None:
    pattern_key = f"{kind}|{action_type}|{agent.pk if agent else ''}|{pattern_extra}"
    measure = _measure(kind, details)
    live = DriftAlert.objects.filter(pattern_key=pattern_key, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
    existing = live.first()
    if existing is not None:
        worse = _significantly_worse(kind, existing.notified_value, measure, config)
        existing.last_seen_at = now
        existing.times_seen += 1
        existing.details = details
        existing.summary = summary[:500]
        existing.decision_ids = evidence[:EVIDENCE_IDS]
        fields = ["last_seen_at", "times_seen", "details", "summary", "decision_ids"]
        with transaction.atomic():
            if worse:
                existing.notified_value = measure
                fields.append("notified_value")
                if existing.status == AlertStatus.ACKNOWLEDGED:
                    # What the person acknowledged is not what is happening now: ask again.
                    existing.status, existing.acknowledged_by, existing.acknowledged_at = AlertStatus.OPEN, None, None
                    fields += ["status", "acknowledged_by", "acknowledged_at"]
                run.notified += len(alert_notifications_queue(alert=existing, event_type=WORSENED, now=now))
            existing.save(update_fields=fields)
        run.updated.append(existing)
        return
    try:
        with transaction.atomic():
            alert = DriftAlert.objects.create(
                pattern_key=pattern_key,
                kind=kind,
                action_type=action_type,
                agent=agent,
                summary=summary[:500],
                details=details,
                decision_ids=evidence[:EVIDENCE_IDS],
                first_seen_at=now,
                last_seen_at=now,
                notified_value=measure,
            )
            notified = len(alert_notifications_queue(alert=alert, event_type=OPENED, now=now))
    except IntegrityError:  # a concurrent run opened it first: the constraint keeps one
        return
    run.notified += notified
    run.opened.append(alert)


def _resolve(
    run: DriftRun, *, kind: str, action_type: str, agent: Agent | None, now: datetime, extra: str = ""
) -> None:
    pattern_key = f"{kind}|{action_type}|{agent.pk if agent else ''}|{extra}"
    run.resolved += DriftAlert.objects.filter(
        pattern_key=pattern_key, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
    ).update(status=AlertStatus.RESOLVED, resolved_at=now)


def _new_action_types(run: DriftRun, *, now: datetime, config: DriftConfig) -> None:
    seen = set(ActionRequest.objects.values_list("action_type", flat=True).distinct().order_by()[:10_000])
    known = set(KnownActionType.objects.values_list("action_type", flat=True))
    new = sorted(seen - known)
    if not new:
        return
    first_run = not known
    KnownActionType.objects.bulk_create(
        [KnownActionType(action_type=t, first_seen_at=now) for t in new], ignore_conflicts=True
    )
    if first_run:
        return  # the first run learns what exists; there is no "before" to differ from
    for action_type in new:
        ids = list(
            ActionRequest.objects.filter(action_type=action_type)
            .order_by("created_at")
            .values_list("id", flat=True)[:EVIDENCE_IDS]
        )
        _raise(
            run,
            kind=AlertKind.NEW_ACTION_TYPE,
            action_type=action_type,
            agent=None,
            summary=f"New action type {action_type!r} appeared",
            details={"request_ids": [str(i) for i in ids]},
            evidence=[],
            now=now,
            config=config,
        )


def _streak(
    run: DriftRun,
    *,
    kind: str,
    action_type: str,
    agent: Agent,
    keys: list[str | None],
    length: int,
    evidence: list[Any],
    now: datetime,
    config: DriftConfig,
    details: Callable[[str], dict[str, Any]],
    summary: Callable[[str], str],
) -> None:
    """Alert when the newest ``length`` keys (newest first) are one and the same; a different one ends the streak."""
    streak = keys[:length]
    current = streak[0] if len(streak) == length and streak[0] is not None and len(set(streak)) == 1 else None
    if current is not None:
        _raise(
            run,
            kind=kind,
            action_type=action_type,
            agent=agent,
            now=now,
            config=config,
            pattern_extra=current,
            details=details(current),
            evidence=evidence,
            summary=summary(current),
        )
    ended = DriftAlert.objects.filter(
        kind=kind, action_type=action_type, agent=agent, status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
    )
    if current is not None:
        ended = ended.exclude(pattern_key=f"{kind}|{action_type}|{agent.pk}|{current}")
    run.resolved += ended.update(status=AlertStatus.RESOLVED, resolved_at=now)


def _shift_alert(
    run: DriftRun,
    *,
    kind: str,
    result: RateTest | None,
    action_type: str,
    agent: Agent,
    now: datetime,
    config: DriftConfig,
    evidence: Callable[[], list[Any]],
    summary: Callable[[dict[str, Any]], str],
) -> None:
    """One shift test's alert: raised (or updated) while the shift fires, resolved once it clears."""
    if result is None:
        return
    if result.fires:
        _raise(
            run,
            kind=kind,
            action_type=action_type,
            agent=agent,
            now=now,
            config=config,
            details=result.details,
            evidence=evidence(),
            summary=summary(result.details),
        )
    elif result.clears:
        _resolve(run, kind=kind, action_type=action_type, agent=agent, now=now)


def _check_pair(run: DriftRun, *, action_type: str, agent: Agent, config: DriftConfig, now: datetime) -> None:
    limit = config.recent_window + config.baseline_size
    rows = list(
        Decision.objects.filter(request__action_type=action_type, request__agent=agent)
        .order_by("-decided_at", "-id")
        .values_list("id", "outcome", "edited", "reason", "reason_category", "seconds_to_decide")[:limit]
    )
    ids = [r[0] for r in rows]
    checks = {
        AlertKind.REJECTION_RATE: [r[1] == DecisionOutcome.REJECTED for r in rows],
        AlertKind.EDIT_RATE: [r[1] == DecisionOutcome.APPROVED and r[2] for r in rows],
    }
    label = f"{action_type} by {agent.name}"
    for kind, flags in checks.items():
        what = "rejection" if kind == AlertKind.REJECTION_RATE else "edit"
        _shift_alert(
            run,
            kind=kind,
            result=rate_shift(flags, config),
            action_type=action_type,
            agent=agent,
            now=now,
            config=config,
            evidence=lambda flags=flags: [
                i for i, flag in zip(ids[: config.recent_window], flags, strict=False) if flag
            ],
            summary=lambda d, what=what: (
                f"{what} rate of {label} rose to {d['recent_rate']:.0%} (baseline {d['baseline_rate']:.0%}, z={d['z']})"
            ),
        )

    _shift_alert(
        run,
        kind=AlertKind.TIME_TO_DECISION,
        result=time_shift([r[5] for r in rows], config),
        action_type=action_type,
        agent=agent,
        now=now,
        config=config,
        evidence=lambda: [r[0] for r in sorted(rows[: config.recent_window], key=lambda r: r[5], reverse=True)],
        summary=lambda d: (
            f"time to decide {label} rose to a median of {d['recent_p50_seconds']:.0f}s "
            f"(baseline {d['baseline_p50_seconds']:.0f}s, z={d['z']})"
        ),
    )

    _streak(
        run,
        kind=AlertKind.REASON_STREAK,
        action_type=action_type,
        agent=agent,
        keys=[reason_category(r[3], r[4]) if r[1] == DecisionOutcome.REJECTED else None for r in rows],
        length=config.reason_streak,
        evidence=[r[0] for r in rows[: config.reason_streak]],
        now=now,
        config=config,
        details=lambda category: {"reason_category": category, "in_a_row": config.reason_streak},
        summary=lambda category: f"{label} rejected {config.reason_streak} times in a row for {category!r}",
    )

    expiry_flags = [
        status == Status.EXPIRED
        for status in ActionRequest.objects.filter(action_type=action_type, agent=agent, mode=Mode.APPROVE)
        .exclude(status__in=[Status.PENDING, Status.CANCELLED])
        .order_by("-created_at")
        .values_list("status", flat=True)[:limit]
    ]
    _shift_alert(
        run,
        kind=AlertKind.EXPIRY_RATE,
        result=rate_shift(expiry_flags, config),
        action_type=action_type,
        agent=agent,
        now=now,
        config=config,
        evidence=list,
        summary=lambda d: f"expiry rate of {label} rose to {d['recent_rate']:.0%} (baseline {d['baseline_rate']:.0%})",
    )


def drift_detect(*, now: datetime | None = None, config: DriftConfig | None = None) -> DriftRun:
    """One detection pass over every (action type, agent) active in the last 30 days.

    Invariant: at most one open-or-acknowledged alert per pattern; a pattern still present
    updates its alert instead of raising another.
    """
    now = now or timezone.now()
    config = config or DriftConfig.from_settings()
    run = DriftRun()
    _new_action_types(run, now=now, config=config)
    pairs = (
        ActionRequest.objects.filter(created_at__gte=now - LOOKBACK, mode=Mode.APPROVE)
        .values("action_type", "agent_id")
        .annotate(n=Count("id"))
        .order_by("action_type", "agent_id")
    )
    agents = {a.pk: a for a in Agent.objects.filter(pk__in={p["agent_id"] for p in pairs})}
    for pair in pairs:
        _check_pair(run, action_type=pair["action_type"], agent=agents[pair["agent_id"]], config=config, now=now)
        run.pairs_checked += 1
    labelled = (
        AfterReviewLabel.objects.filter(labelled_at__gte=now - LOOKBACK)
        .values("request__action_type", "request__agent_id")
        .annotate(n=Count("id"))
        .order_by("request__action_type", "request__agent_id")
    )
    agents = {a.pk: a for a in Agent.objects.filter(pk__in={p["request__agent_id"] for p in labelled})}
    for pair in labelled:
        _check_labels(
            run,
            action_type=pair["request__action_type"],
            agent=agents[pair["request__agent_id"]],
            config=config,
            now=now,
        )
    return run


def _check_labels(run: DriftRun, *, action_type: str, agent: Agent, config: DriftConfig, now: datetime) -> None:
    """What ran unattended and was labelled afterwards: the flagged rate, and the same flag N times in a row."""
    rows = list(
        AfterReviewLabel.objects.filter(request__action_type=action_type, request__agent=agent)
        .order_by("-labelled_at", "-id")
        .values_list("request_id", "label", "reason_category")[: config.recent_window + config.baseline_size]
    )
    label = f"{action_type} by {agent.name}"
    flags = [row[1] != AfterReviewLabelKind.FINE for row in rows]
    _shift_alert(
        run,
        kind=AlertKind.FLAGGED_RATE,
        result=rate_shift(flags, config),
        action_type=action_type,
        agent=agent,
        now=now,
        config=config,
        evidence=list,
        summary=lambda d: (
            f"flagged rate of {label}, reviewed afterwards, rose to {d['recent_rate']:.0%} "
            f"(baseline {d['baseline_rate']:.0%}, z={d['z']}): it runs unattended more often than it should"
        ),
    )

    length = settings.COUNTERSIGN_FLAG_STREAK
    _streak(
        run,
        kind=AlertKind.FLAG_STREAK,
        action_type=action_type,
        agent=agent,
        keys=[f"{row[1]}:{row[2]}" if row[1] != AfterReviewLabelKind.FINE else None for row in rows],
        length=length,
        evidence=[],
        now=now,
        config=config,
        details=lambda key: {
            "label": key.split(":", 1)[0],
            "reason_category": key.split(":", 1)[1],
            "in_a_row": length,
        },
        summary=lambda key: (
            f"{label} flagged {length} times in a row afterwards as {key.split(':', 1)[0]} ({key.split(':', 1)[1]!r})"
        ),
    )
