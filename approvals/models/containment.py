"""The kill switch (pauses) and the containment counts."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .agents import Agent


class Pause(models.Model):
    """Staff stopped an agent, or an action type for every agent (the kill switch).

    One row per pause, closed (``resumed_at``) when it is lifted: the rows are the record of
    who paused what, why, and who resumed it. At most one open pause per agent and per action
    type (partial unique constraints); exactly one of ``agent`` and ``action_type`` is set.
    """

    class Kind(models.TextChoices):
        AGENT = "agent", "agent"
        ACTION_TYPE = "action_type", "action type"

    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="pauses")
    action_type = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paused_by_label = models.CharField(max_length=200, help_text="Who paused it, as shown (username or command).")
    paused_at = models.DateTimeField()
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resumed_by_label = models.CharField(max_length=200, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-paused_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=(Q(agent__isnull=False) & Q(action_type="")) | (Q(agent__isnull=True) & ~Q(action_type="")),
                name="pause_targets_agent_or_action_type",
            ),
            models.UniqueConstraint(
                fields=("agent",),
                condition=Q(resumed_at__isnull=True, agent__isnull=False),
                name="one_active_pause_per_agent",
            ),
            models.UniqueConstraint(
                fields=("action_type",),
                condition=Q(resumed_at__isnull=True) & ~Q(action_type=""),
                name="one_active_pause_per_action_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind_label} {self.target} paused by {self.paused_by_label}"

    @property
    def kind(self) -> str:
        return self.Kind.AGENT if self.agent_id else self.Kind.ACTION_TYPE

    @property
    def kind_label(self) -> str:
        return "agent" if self.agent_id else "action type"

    @property
    def target(self) -> str:
        return self.agent.name if self.agent_id else self.action_type

    @property
    def is_active(self) -> bool:
        return self.resumed_at is None


class ContainmentKind(models.TextChoices):
    """Why a submission did not become a new card. Refusals write no request row, so they are counted here."""

    RATE_LIMITED = "rate_limited", "rate limited"
    TOO_MANY_PENDING = "too_many_pending", "too many pending"
    COLLAPSED = "collapsed", "collapsed into a pending duplicate"
    PAUSED = "paused", "agent paused"
    BUDGET_EXCEEDED = "budget_exceeded", "budget exceeded"


class ContainmentCount(models.Model):
    """How many submissions of one agent and action type were refused or collapsed, per day and kind.

    One row per (day, agent, action type, kind), incremented in one upsert (never a row per
    submission): see ``approvals.services.containment.containment_count_add``.
    """

    day = models.DateField()
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    action_type = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ContainmentKind.choices)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("-day", "kind")
        constraints = [
            models.UniqueConstraint(fields=("day", "agent", "action_type", "kind"), name="one_containment_count")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.action_type}: {self.count}"
