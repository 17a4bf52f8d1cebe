from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import Group


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


class OnExpiry(models.TextChoices):
    REJECT = "reject", "reject: the request expires"
    ESCALATE = "escalate", "escalate once to the escalation group, with a fresh deadline"


def validate_condition(value: str) -> None:
    from .evaluation import ConditionError, compile_condition

    try:
        compile_condition(value)
    except ConditionError as exc:
        raise ValidationError(str(exc), code="invalid_condition") from None


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
    condition = models.TextField(
        blank=True,
        validators=[validate_condition],
        help_text=(
            "Optional CEL expression over params, context, confidence, agent (name, tags) and action_type, "
            'e.g. params.amount > 1000 or !params.to.endsWith("@example.com"). Blank always matches.'
        ),
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many distinct reviewers must approve; any rejection rejects.",
    )
    reviewer_group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only this group sees and decides the request. Blank: every reviewer.",
    )
    on_expiry = models.CharField(max_length=10, choices=OnExpiry.choices, default=OnExpiry.REJECT)
    escalation_group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Where an expiring request escalates to (once). Blank: every reviewer.",
    )
    enabled = models.BooleanField(default=True)
    collapse_duplicates = models.BooleanField(
        null=True,
        blank=True,
        help_text=(
            "A retry identical to one of the agent's pending requests (same action type, params and task context) "
            "returns that request instead of a new card. Empty: on for approve mode."
        ),
    )
    sample_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=(
            "Share of the requests this policy lets through in auto mode that a reviewer labels afterwards "
            "(0 to 1; chosen from the request id, so a replay samples the same ones). Log mode: every one."
        ),
    )
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
            models.CheckConstraint(condition=models.Q(required_approvals__gte=1), name="policy_quorum_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.action_pattern} → {self.mode}"

    @property
    def effective_risk(self) -> str:
        return self.risk or DEFAULT_RISK_BY_MODE[Mode(self.mode)]

    def clean(self) -> None:
        super().clean()
        group = self.escalation_group
        if self.on_expiry == OnExpiry.ESCALATE and group is None:
            raise ValidationError(
                {
                    "escalation_group": ValidationError(
                        "on_expiry 'escalate' needs an escalation group to send the request to.",
                        code="escalation_group_required",
                    )
                }
            )
        if group is not None and not group_can_review(group):
            raise ValidationError(
                {
                    "escalation_group": ValidationError(
                        f"Group {group.name!r} lacks the review permission, so nobody in it could decide an "
                        f"escalated request. Grant it with: manage.py create_reviewer USERNAME --group {group.name}",
                        code="group_cannot_review",
                    )
                }
            )


def group_can_review(group: Group) -> bool:
    """Whether members of ``group`` may decide requests (what ``create_reviewer --group`` grants)."""
    return group.permissions.filter(codename="review_actionrequest", content_type__app_label="approvals").exists()


class PolicyVersion(models.Model):
    """A snapshot of the whole table, written on every change: who, when, why, what."""

    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    snapshot = models.JSONField(default=list)
    diff = models.JSONField(
        default=dict, blank=True, help_text="Added, removed and changed rows vs the previous version."
    )

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"v{self.number}"


class PolicyDraft(models.Model):
    """A proposed table (the full list of rows), simulated before it is published in one transaction."""

    name = models.CharField(max_length=120)
    rows = models.JSONField(default=list, help_text="The whole table as it would be: a list of policy rows.")
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    based_on_version = models.PositiveIntegerField(default=0)
    published_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-updated_at",)

    def __str__(self) -> str:
        return self.name
