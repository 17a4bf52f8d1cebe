"""What evaluation adds beside the approvals tables: key scopes, drift alerts, the known action types.

Decisions themselves are read from ``approvals.Decision``; nothing here copies them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.models import Agent, AgentKey

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
    REASON_STREAK = "reason_streak", "same rejection reason repeated"
    NEW_ACTION_TYPE = "new_action_type", "new action type"


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
