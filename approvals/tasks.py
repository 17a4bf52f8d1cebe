"""Celery tasks: an interface only. Each takes ids, calls one service, declares its retries."""

from __future__ import annotations

from celery import shared_task

from .notifications import (
    action_request_notify,
    action_requests_remind_due,
    queue_notification_attempt,
    queue_notifications_deliver_reminders,
    queue_notifications_due,
)
from .services import action_requests_expire_due, after_reviews_lapse_due
from .webhooks import webhook_deliveries_due, webhook_delivery_attempt


@shared_task(ignore_result=True)
def sweep_expired() -> int:
    return action_requests_expire_due()


@shared_task(ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def deliver_webhook(delivery_id: str) -> None:
    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def deliver_due_webhooks() -> int:
    due = webhook_deliveries_due()
    for delivery_id in due:
        webhook_delivery_attempt(delivery_id=delivery_id)
    return len(due)


@shared_task(ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def notify_request(request_id: str, kind: str) -> list[str]:
    # Kept for messages a version without the notification outbox left in the broker.
    return action_request_notify(request_id=request_id, kind=kind)


@shared_task(ignore_result=True, autoretry_for=(ConnectionError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def deliver_queue_notification(notification_id: str) -> None:
    queue_notification_attempt(notification_id=notification_id)


@shared_task(ignore_result=True)
def deliver_due_queue_notifications() -> int:
    due = queue_notifications_due()
    for notification_id in due:
        queue_notification_attempt(notification_id=notification_id)
    return len(due)


@shared_task(ignore_result=True)
def remind_due_requests() -> int:
    claimed = action_requests_remind_due()
    queue_notifications_deliver_reminders(request_ids=claimed)
    return len(claimed)


@shared_task(ignore_result=True)
def lapse_after_reviews() -> int:
    return after_reviews_lapse_due()
