"""Action requests and what is recorded about them: statuses, decisions, votes, the audit trail."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from policies.models import Mode, Policy, Risk

from .agents import Agent


class AfterReview(models.TextChoices):
    NONE = "", "not for review afterwards"
    DUE = "due", "waiting for a label"
    LABELLED = "labelled", "labelled"
    UNLABELLED = "unlabelled", "left unlabelled (too old)"


class AfterReviewLabelKind(models.TextChoices):
    FINE = "fine", "fine"
    SHOULD_HAVE_ASKED = "should_have_asked", "should have asked a human"
    SHOULD_HAVE_BLOCKED = "should_have_blocked", "should have been blocked"


class Status(models.TextChoices):
    ALLOWED = "allowed", "allowed"
    BLOCKED = "blocked", "blocked"
    PENDING = "pending", "pending"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    EXPIRED = "expired", "expired"
    CANCELLED = "cancelled", "cancelled"
    EXECUTED = "executed", "executed"
    LAPSED = "lapsed", "lapsed"


PAUSED_AGENT = "agent_paused"
PAUSED_ACTION_TYPE = "action_type_paused"
# The verdict reason of a submission a pause blocked (whatever the policy table says).
PAUSED_VERDICT = Q(verdict_reason__in=[PAUSED_AGENT, PAUSED_ACTION_TYPE])


class ActionRequest(models.Model):
    """An action an agent proposes, and where it is in its life (see DESIGN.md)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by requests_by_agent, whose first column it is (every submission maintains each index).
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="requests", db_index=False)
    action_type = models.CharField(max_length=200)
    params = models.JSONField(default=dict)
    evidence = models.JSONField(default=list)
    summary = models.CharField(max_length=500)
    confidence = models.FloatField(null=True, blank=True)
    context = models.JSONField(default=dict)
    callback_url = models.URLField(blank=True, max_length=2000)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64)

    status = models.CharField(max_length=12, choices=Status.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    risk = models.CharField(max_length=10, choices=Risk.choices)
    policy = models.ForeignKey(Policy, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    policy_pattern = models.CharField(max_length=200, blank=True)
    policy_version = models.PositiveIntegerField(default=0)
    verdict_reason = models.TextField()
    approval_ttl_seconds = models.PositiveIntegerField()

    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    final_params = models.JSONField(null=True, blank=True)
    # Bumped on every change a reviewer could have missed while looking at the card.
    revision = models.PositiveIntegerField(default=1)
    # The agent's one report of what happened when it ran the final params (see services.action_request_report_execution).
    executed_at = models.DateTimeField(null=True, blank=True)
    execution_status = models.CharField(
        max_length=10, blank=True, choices=[("succeeded", "succeeded"), ("failed", "failed")]
    )
    execution_result = models.JSONField(null=True, blank=True)
    # Set once (compare-and-swap) when the agent claims the run, before it runs: a second process
    # retrying the same tool call is refused here instead of running the tool again.
    execution_started_at = models.DateTimeField(null=True, blank=True)
    # Chosen by the caller that claimed the run: the same caller retrying its claim (a lost answer) is told "yours".
    execution_run_id = models.CharField(max_length=64, blank=True)
    # Copied from the deciding policy at submission, so later table edits never change a request in flight.
    required_approvals = models.PositiveSmallIntegerField(default=1)
    reviewer_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    on_expiry = models.CharField(max_length=10, default="reject")
    escalation_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    pending_ttl_seconds = models.PositiveIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Set (compare-and-swap, once per deadline) when the deadline reminder went out.
    reminded_at = models.DateTimeField(null=True, blank=True)
    # Set by a pause (kill switch) on an approval whose run had not started: its start and report are refused,
    # for good (resuming does not give it back). See services.pauses.
    approval_revoked_at = models.DateTimeField(null=True, blank=True)
    approval_revoked_by = models.ForeignKey(
        "Pause", null=True, blank=True, on_delete=models.SET_NULL, related_name="revoked_requests", db_index=False
    )
    # On pending rows: the hash of (action type, canonical params, the context keys that identify the task),
    # so an identical retry finds the card it duplicates (approvals.services.containment).
    duplicate_key = models.CharField(max_length=64, blank=True, default="")
    # The W3C trace context the agent sent (header or context.traceparent): this request's spans join that trace.
    traceparent = models.CharField(max_length=55, blank=True, default="")
    # Review afterwards: "due" for a log request, or a sampled auto one, until a reviewer labels it
    # ("labelled") or it grows older than COUNTERSIGN_AFTER_REVIEW_MAX_AGE_DAYS ("unlabelled"); "" otherwise.
    after_review = models.CharField(max_length=12, blank=True, default="", choices=AfterReview.choices)
    # context.agent_version as the agent sent it (at most 100 characters): the release gate compares versions.
    agent_version = models.CharField(max_length=100, blank=True, default="")
    # Set in the transaction that queued a post to a group's Slack app: only then does a transition
    # look for Slack messages to update (approvals.notifications.slack_messages_refresh).
    slack_announced = models.BooleanField(default=False, editable=False)
    # The head of this request's audit hash chain (approvals.audit_chain): how many events it holds and the
    # hash of the last one. Kept here so that deleting the last event is detected too; moved forward only by
    # services._effects.audit, with a compare-and-swap on audit_length that also serialises appenders.
    audit_length = models.PositiveIntegerField(default=0, editable=False)
    audit_head = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        ordering = ("-created_at",)
        permissions = [("review_actionrequest", "Can review action requests in the queue")]
        constraints = [
            models.UniqueConstraint(
                fields=("agent", "idempotency_key"),
                condition=Q(idempotency_key__isnull=False),
                name="unique_idempotency_key_per_agent",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | (Q(confidence__gte=0) & Q(confidence__lte=1)),
                name="confidence_between_0_and_1",
            ),
        ]
        indexes = [
            # The queue (soonest deadline first) and the expiry sweep both walk this index.
            models.Index(fields=("expires_at",), condition=Q(status="pending"), name="pending_by_deadline"),
            models.Index(fields=("approval_expires_at",), condition=Q(status="approved"), name="approved_by_deadline"),
            models.Index(fields=("agent", "-created_at"), name="requests_by_agent"),
            # The decided-history page, newest finished first (keyset on this expression; see reviewers.selectors).
            models.Index(Coalesce("decided_at", "created_at").desc(), F("id").desc(), name="requests_by_finish_time"),
            # A queue card's "this agent's record on this action type, 30 days": decided rows only.
            models.Index(fields=("agent", "action_type", "decided_at"), name="decided_by_agent_action"),
            # The paused counts of /metrics and the dashboard: only submissions a pause blocked.
            models.Index(fields=("agent", "action_type"), condition=PAUSED_VERDICT, name="paused_submissions"),
            # An agent's pending requests: counted for its cap, searched for a duplicate of a new submission.
            models.Index(fields=("agent", "duplicate_key"), condition=Q(status="pending"), name="pending_by_agent"),
            # Usage in policy conditions (approvals.usage): this agent's, or every agent's, recent requests of a type.
            models.Index(fields=("agent", "action_type", "created_at"), name="usage_by_agent"),
            models.Index(fields=("action_type", "created_at"), name="usage_by_action_type"),
            # The review-afterwards queue, oldest first, and its age limit.
            models.Index(fields=("created_at", "id"), condition=Q(after_review="due"), name="after_review_due"),
            # The release gate: one agent's requests of one version.
            models.Index(fields=("agent", "agent_version", "created_at"), name="requests_by_agent_version"),
            # Foreign keys that most rows leave empty: indexed where set (deleting a group or a pause finds its
            # rows), so that a submission does not write an index entry for each empty one.
            *(
                models.Index(fields=(name,), condition=Q(**{f"{name}__isnull": False}), name=index_name)
                for name, index_name in (
                    ("reviewer_group", "requests_by_reviewer_group"),
                    ("escalation_group", "requests_by_escalation_group"),
                    ("approval_revoked_by", "requests_by_revoking_pause"),
                )
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} ({self.status})"


class DecisionOutcome(models.TextChoices):
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"


class Surface(models.TextChoices):
    """Where a reviewer decided: each door passes its own to the decide service."""

    WEB = "web", "queue page"
    BATCH = "batch", "queue page (batch)"
    API = "api", "reviewer API"
    SLACK = "slack", "Slack"
    EMAIL = "email", "email"
    PUSH = "push", "push notification"


class Decision(models.Model):
    """A human decision, kept as evaluation data: it stands on its own."""

    request = models.OneToOneField(ActionRequest, on_delete=models.CASCADE, related_name="decision")
    outcome = models.CharField(max_length=10, choices=DecisionOutcome.choices)
    edited = models.BooleanField(default=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    reviewer_username = models.CharField(max_length=150)
    # A slug from settings.COUNTERSIGN_REJECT_REASONS on a rejection; empty on an approval.
    reason_category = models.CharField(max_length=50, blank=True)
    reason = models.TextField(blank=True)
    note = models.TextField(blank=True)
    original_params = models.JSONField()
    final_params = models.JSONField(null=True, blank=True)
    request_snapshot = models.JSONField(help_text="The request as the reviewer saw it.")
    verdict = models.JSONField(help_text="Mode, policy, policy version and reason that sent it to a human.")
    decided_at = models.DateTimeField()
    seconds_to_decide = models.FloatField(help_text="From submission to decision.")
    surface = models.CharField(
        max_length=10, choices=Surface.choices, default=Surface.WEB, help_text="Where the reviewer decided."
    )

    class Meta:
        ordering = ("-decided_at",)
        indexes = [models.Index(fields=("-decided_at",), name="decisions_by_time")]

    def __str__(self) -> str:
        return f"{self.outcome} by {self.reviewer_username}"


class AuditEvent(models.Model):
    """One row per state change or notable attempt, written in the transaction that made it.

    Each request's events form a hash chain (approvals.audit_chain): ``position`` 1, 2, 3…,
    ``prev_hash`` the hash of the event before it ("" for the first), ``hash`` over the event's
    canonical content. Written only by services._effects.audit."""

    # Indexed by one_audit_event_per_position, whose first column it is.
    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="audit_events", db_index=False)
    position = models.PositiveIntegerField(editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, editable=False)
    kind = models.CharField(max_length=40)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    actor_kind = models.CharField(
        max_length=10,
        choices=[("agent", "agent"), ("reviewer", "reviewer"), ("staff", "staff"), ("system", "system")],
    )
    actor_label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [models.UniqueConstraint(fields=("request", "position"), name="one_audit_event_per_position")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}→{self.to_status}"


class Vote(models.Model):
    """One reviewer's approval or rejection of a request that needs a quorum. One vote per reviewer."""

    # Indexed by one_vote_per_reviewer, whose first column it is.
    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="votes", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reviewer_username = models.CharField(max_length=150)
    approve = models.BooleanField()
    reason_category = models.CharField(max_length=50, blank=True)
    reason = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField()
    surface = models.CharField(
        max_length=10, choices=Surface.choices, default=Surface.WEB, help_text="Where the reviewer voted."
    )

    class Meta:
        ordering = ("created_at", "id")
        constraints = [models.UniqueConstraint(fields=("request", "reviewer"), name="one_vote_per_reviewer")]

    # Read like a Decision by the views that show the outcome of a decide call: a vote is never an edit.
    edited = False

    def __str__(self) -> str:
        return f"{'approve' if self.approve else 'reject'} by {self.reviewer_username}"


class ActionTypeSchema(models.Model):
    """A JSON Schema an agent registered for one action type's params: reviewers' edits must satisfy it."""

    action_type = models.CharField(max_length=200, unique=True)
    params_schema = models.JSONField()
    registered_by = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_type_schemas"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("action_type",)

    def __str__(self) -> str:
        return self.action_type
