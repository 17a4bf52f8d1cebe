from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Mode(models.TextChoices):
    AUTO = "auto", "auto: go ahead"
    LOG = "log", "log: go ahead, review afterwards"
    APPROVE = "approve", "approve: wait for a human"
    BLOCK = "block", "block: never"


class Risk(models.TextChoices):
    LOW = "low", "low"
    MEDIUM = "medium", "medium"
    HIGH = "high", "high"
    CRITICAL = "critical", "critical"


DEFAULT_RISK_BY_MODE = {
    Mode.AUTO: Risk.LOW,
    Mode.LOG: Risk.MEDIUM,
    Mode.APPROVE: Risk.HIGH,
    Mode.BLOCK: Risk.CRITICAL,
}

ACTION_PATTERN_ALPHABET = set("abcdefghijklmnopqrstuvwxyz0123456789_.-:*?[]!")


def validate_action_pattern(value: str) -> None:
    if not value or not set(value) <= ACTION_PATTERN_ALPHABET:
        raise ValidationError(
            "Use lower-case letters, digits, '_', '.', '-', ':' and the glob characters * ? [ ] !",
            code="invalid_pattern",
        )


class Policy(models.Model):
    """One row of the policy table: which mode an action type gets, and its clocks."""

    action_pattern = models.CharField(
        max_length=200,
        validators=[validate_action_pattern],
        help_text="An exact action type (send_external_email) or a glob (delete_*).",
    )
    mode = models.CharField(max_length=10, choices=Mode.choices)
    priority = models.IntegerField(default=0, help_text="Higher priority is evaluated first.")
    risk = models.CharField(
        max_length=10, choices=Risk.choices, blank=True, help_text="Shown to reviewers; blank derives it from the mode."
    )
    pending_ttl_seconds = models.PositiveIntegerField(
        default=4 * 3600, help_text="How long a pending request waits for a human before it expires."
    )
    approval_ttl_seconds = models.PositiveIntegerField(
        default=15 * 60, help_text="How long an approval stays usable by the agent."
    )
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-priority", "action_pattern", "id")
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(condition=models.Q(pending_ttl_seconds__gte=1), name="policy_pending_ttl_positive"),
            models.CheckConstraint(
                condition=models.Q(approval_ttl_seconds__gte=1), name="policy_approval_ttl_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_pattern} → {self.mode}"

    @property
    def effective_risk(self) -> str:
        return self.risk or DEFAULT_RISK_BY_MODE[Mode(self.mode)]


class PolicyVersion(models.Model):
    """A snapshot of the whole table, written on every change: who, when, why, what."""

    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    snapshot = models.JSONField(default=list)

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"v{self.number}"
