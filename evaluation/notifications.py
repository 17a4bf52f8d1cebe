"""Telling people about drift alerts: a Standard-Webhooks-signed POST and/or an email.

The same outbox as the agents' webhooks and the reviewer groups' messages: a row per message
(``core.outbox.OutboxMessage``), written in the transaction that opens the alert, a Celery task
per row queued after commit (``core.dispatch``: a broker outage leaves the row for the sweep),
a beat sweep for retries, one ``AlertNotificationAttempt`` per try. Claiming, backoff and giving
up are ``core.outbox``; the address is checked and dialled by ``core.netguard``; the signature
is the agents' webhook signature (``approvals.webhooks.webhook_sign``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail

from approvals.webhooks import webhook_sign
from core.dispatch import enqueue_each_on_commit
from core.errors import InvalidInput
from core.netguard import pinned_post
from core.outbox import outbox_attempt, outbox_due, outbox_resend
from core.timefmt import isoformat

from .models import AlertNotification, DriftAlert

OPENED = "drift_alert.opened"
WORSENED = "drift_alert.worsened"


def alert_link(alert: DriftAlert) -> str:
    return f"{settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}/dashboard/decisions/?alert={alert.pk}"


def alert_payload(*, alert: DriftAlert, event_type: str, now: datetime) -> dict[str, Any]:
    """The webhook body (Standard Webhooks: type, timestamp, data)."""
    return {
        "type": event_type,
        "timestamp": isoformat(now),
        "data": {
            "alert_id": alert.pk,
            "kind": alert.kind,
            "action_type": alert.action_type,
            "agent": {"id": str(alert.agent_id), "name": alert.agent.name} if alert.agent_id else None,
            "status": alert.status,
            "summary": alert.summary,
            "details": alert.details,
            "decision_ids": alert.decision_ids,
            "first_seen_at": isoformat(alert.first_seen_at),
            "last_seen_at": isoformat(alert.last_seen_at),
            "times_seen": alert.times_seen,
            "url": alert_link(alert),
        },
    }


def alert_notifications_queue(*, alert: DriftAlert, event_type: str, now: datetime) -> list[AlertNotification]:
    """Write one outbox row per configured channel and queue their delivery after commit.

    Invariant: called inside the transaction that changed the alert, so the rows exist
    exactly when the change does; nothing is sent for a rolled-back change, and a broker
    that cannot take the task delays the message (the beat sweep sends it) without failing
    the change.
    """
    payload = alert_payload(alert=alert, event_type=event_type, now=now)
    targets = []
    if settings.COUNTERSIGN_ALERT_WEBHOOK_URL:
        targets.append((AlertNotification.Channel.WEBHOOK, settings.COUNTERSIGN_ALERT_WEBHOOK_URL))
    if settings.COUNTERSIGN_ALERT_EMAILS:
        targets.append((AlertNotification.Channel.EMAIL, ",".join(settings.COUNTERSIGN_ALERT_EMAILS)))
    rows = AlertNotification.objects.bulk_create(
        [
            AlertNotification(
                alert=alert,
                event_type=event_type,
                channel=channel,
                target=target,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for channel, target in targets
        ]
    )
    enqueue_each_on_commit("evaluation.tasks.deliver_alert_notification", [row.pk for row in rows])
    return rows


def _send_webhook(notification: AlertNotification, *, now: datetime, client: httpx.Client | None) -> int:
    if not settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET.startswith("whsec_"):
        # Settings refuse a URL without a secret; a worker started with other settings may still run this.
        raise InvalidInput("COUNTERSIGN_ALERT_WEBHOOK_SECRET (whsec_...) is not set in this process.")
    body = json.dumps(notification.payload, separators=(",", ":"))
    headers = webhook_sign(
        secret=settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET, message_id=str(notification.pk), timestamp=now, body=body
    )
    # Dialled at the address the guard checked: a name that rebinds to a private one is never reached.
    return pinned_post(notification.target, content=body.encode(), headers=headers, client=client)


def _send_email(notification: AlertNotification) -> None:
    data = notification.payload["data"]
    lines = [
        data["summary"],
        "",
        f"Kind: {data['kind']}",
        f"Action type: {data['action_type']}",
        *([f"Agent: {data['agent']['name']}"] if data["agent"] else []),
        f"Seen {data['times_seen']} time(s), first {data['first_seen_at']}, last {data['last_seen_at']}",
        f"Details: {json.dumps(data['details'], sort_keys=True)}",
        "",
        f"The decisions behind it, and the button to acknowledge it: {data['url']}",
    ]
    prefix = "worse: " if notification.event_type == WORSENED else ""
    send_mail(
        subject=f"[Countersign] drift {prefix}{data['summary']}"[:200],
        message="\n".join(lines),
        from_email=None,
        recipient_list=notification.target.split(","),
    )


def alert_notification_attempt(*, notification_id: Any, client: httpx.Client | None = None) -> AlertNotification | None:
    """Try one notification once; record the attempt; schedule the next or give up after the max age.

    Invariant: the row is claimed (its next attempt pushed past the send's timeout) before
    anything is sent, so two workers never send the same attempt (``outbox_attempt``).
    """

    def send(notification: AlertNotification, now: datetime) -> int | None:
        if notification.channel == AlertNotification.Channel.WEBHOOK:
            return _send_webhook(notification, now=now, client=client)
        _send_email(notification)
        return None

    # OSError: SMTP connection refused, timeouts; retried like an HTTP failure.
    return outbox_attempt(AlertNotification, pk=notification_id, send=send, retry_on=(httpx.HTTPError, OSError))


def alert_notifications_due(*, limit: int = 100) -> list[Any]:
    return outbox_due(AlertNotification, limit=limit)


def alert_notification_resend(*, notification_id: Any) -> None:
    """Admins re-send a notification (delivered or given up): it goes back to the outbox, due now."""
    outbox_resend(AlertNotification, pks=[notification_id])
