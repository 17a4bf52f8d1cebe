"""Helpers for the approvals tests."""

from __future__ import annotations

import time_machine

from approvals.models import WebhookDelivery
from approvals.webhooks import webhook_delivery_attempt


def attempt_each_retry_when_due(delivery: WebhookDelivery, *, tries: int) -> None:
    """Travel to each scheduled retry and attempt it, until the delivery is no longer pending (at most ``tries``)."""
    for _ in range(tries):
        delivery.refresh_from_db()
        if delivery.state != WebhookDelivery.State.PENDING:
            break
        with time_machine.travel(delivery.next_attempt_at, tick=True):
            webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
