"""Abstract models several apps build on; no table lives here, so core has no migrations."""

from __future__ import annotations

import uuid

from django.db import models


class OutboxMessage(models.Model):
    """One message to send outside (a webhook, an email, a chat post): a row of an outbox table.

    Written in the transaction that causes it and sent later by ``core.outbox.outbox_attempt``,
    so an outage of Redis, a worker or the receiver delays the message but loses none. A
    subclass adds what is sent and to whom, an attempt log (``OutboxAttempt`` subclass under
    ``related_name="attempt_log"``), a partial index on ``next_attempt_at`` for pending rows,
    and may redefine ``State`` and ``state`` with more states (keeping these three).
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ("-created_at",)


class OutboxAttempt(models.Model):
    """One try of an outbox row; a subclass adds the foreign key to its row, related_name="attempt_log"."""

    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ("attempted_at", "id")
