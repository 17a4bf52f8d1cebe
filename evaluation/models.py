"""What evaluation adds beside the approvals tables: key scopes, drift alerts, the known action types.

Decisions themselves are read from ``approvals.Decision``; nothing here copies them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.models import Agent, AgentKey
from core.outbox import OutboxAttempt, OutboxMessage

SCOPE_EVALUATION_READ = "evaluation:read"
KNOWN_SCOPES = (SCOPE_EVALUATION_READ,)


class AgentKeyGrant(models.Model):
    """Extra scopes an agent key holds beyond submitting its own requests.

    Kept beside ``AgentKey`` rather than as a column on it, so that evaluation's grants
    do not add a migration to the approvals app (others migrate it concurrently).
    """

    key = models.OneToOneField(AgentKey, on_delete=models.CASCADE, related_name="grant")
    scopes = models.JSONField(default=list, help_text=f"A list of scopes, e.g. {list(KNOWN_SCOPES)}")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.key_id}: {', '.join(self.scopes)}"


class AlertKind(models.TextChoices):
    REJECTION_RATE = "rejection_rate", "rejection rate up"
    EDIT_RATE = "edit_rate", "edit rate up"
    EXPIRY_RATE = "expiry_rate", "expiry rate up"
    TIME_TO_DECISION = "time_to_decision", "time to decision up"
    REASON_STREAK = "reason_streak", "same rejection reason repeated"
    NEW_ACTION_TYPE = "new_action_type", "new action type"
    BUDGET = "budget", "budget reached"
    FLAGGED_RATE = "flagged_rate", "flagged rate up (review afterwards)"
    FLAG_STREAK = "flag_streak", "same flag repeated (review afterwards)"


class AlertStatus(models.TextChoices):
    OPEN = "open", "open"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


class DriftAlert(models.Model):
    """One alert per pattern while the pattern lasts: later detections update it, never repeat it."""

    pattern_key = models.CharField(max_length=400, help_text="kind|action_type|agent: what 'the same alert' means.")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    action_type = models.CharField(max_length=200)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="drift_alerts")
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict)
    decision_ids = models.JSONField(default=list, help_text="The decisions behind the alert (most recent window).")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=1)
    notified_value = models.FloatField(
        null=True, blank=True, help_text="The measure (rate, seconds) when people were last told; None: never re-sent."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-last_seen_at",)
        constraints = [
            # The grouping rule, enforced by the database: one live alert per pattern.
            models.UniqueConstraint(
                fields=("pattern_key",),
                condition=Q(status__in=["open", "acknowledged"]),
                name="one_live_alert_per_pattern",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.action_type} ({self.status})"


class KnownActionType(models.Model):
    """Action types the drift job has seen; an unseen one is a 'new action type' alert."""

    action_type = models.CharField(max_length=200, unique=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.action_type


class AlertNotification(OutboxMessage):
    """One message about one alert to one channel: an outbox row, delivered by Celery and retried.

    Written in the transaction that opens (or significantly worsens) the alert, so a Redis or
    worker outage delays a notification but loses none.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "signed webhook"
        EMAIL = "email", "email"

    alert = models.ForeignKey(DriftAlert, on_delete=models.CASCADE, related_name="notifications")
    event_type = models.CharField(max_length=40, help_text="drift_alert.opened or drift_alert.worsened")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.TextField(help_text="The URL, or the comma-separated addresses, when it was queued.")
    payload = models.JSONField()

    class Meta(OutboxMessage.Meta):
        indexes = [
            models.Index(fields=("next_attempt_at",), condition=Q(state="pending"), name="alert_notifications_due")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} via {self.channel} ({self.state})"


class AlertNotificationAttempt(OutboxAttempt):
    notification = models.ForeignKey(AlertNotification, on_delete=models.CASCADE, related_name="attempt_log")

    def __str__(self) -> str:
        return f"{self.notification_id} at {self.attempted_at}: {self.error or self.status_code or 'sent'}"
