"""Celery tasks: an interface only."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .budgets import budget_alerts_check
from .drift import drift_detect
from .notifications import alert_notification_attempt, alert_notifications_due


@shared_task(ignore_result=True)
def detect_drift() -> int:
    run = drift_detect()
    return len(run.opened)


@shared_task(ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def deliver_alert_notification(notification_id: str) -> None:
    alert_notification_attempt(notification_id=notification_id)


@shared_task(ignore_result=True)
def deliver_due_alert_notifications() -> int:
    due = alert_notifications_due()
    for notification_id in due:
        alert_notification_attempt(notification_id=notification_id)
    return len(due)


@shared_task(ignore_result=True)
def check_budgets() -> int:
    return len(budget_alerts_check(now=timezone.now()))
