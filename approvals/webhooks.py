"""Agents' webhooks: Standard Webhooks signatures and one delivery attempt from the outbox.

Where a webhook may go, and how it is dialled, is ``core.netguard``; claiming, backoff and
giving up are ``core.outbox``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from core.netguard import pinned_post
from core.outbox import outbox_attempt, outbox_due, outbox_resend

from .models import WebhookDelivery


def webhook_sign(*, secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, timestamp, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "Countersign-Webhooks/1",
    }


def webhook_delivery_attempt(*, delivery_id: Any, client: httpx.Client | None = None) -> WebhookDelivery | None:
    """Try one delivery once; record the attempt; schedule the next or give up after the max age.

    Invariant: a delivery is claimed (its next attempt pushed forward) before the
    HTTP call, so two workers never send the same attempt at once (``outbox_attempt``).
    """
    return outbox_attempt(
        WebhookDelivery,
        pk=delivery_id,
        send=lambda delivery, now: _post_delivery(delivery, now=now, client=client),
        select_related=("request__agent",),
    )


def _post_delivery(delivery: WebhookDelivery, *, now: datetime, client: httpx.Client | None) -> int:
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = webhook_sign(
        secret=delivery.request.agent.webhook_secret, message_id=str(delivery.id), timestamp=now, body=body
    )
    return pinned_post(delivery.url, content=body.encode(), headers=headers, client=client)


def webhook_deliveries_due(*, limit: int = 100) -> list[Any]:
    return outbox_due(WebhookDelivery, limit=limit)


def webhook_delivery_resend(*, delivery_id: Any) -> None:
    """Admins re-send a delivery (delivered or given up): it goes back to the outbox, due now."""
    outbox_resend(WebhookDelivery, pks=[delivery_id])
