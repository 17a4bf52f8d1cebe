from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from core.errors import InvalidInput
from core.fields import EncryptedTextField
from core.netguard import validate_outbound_url
from core.outbox import OutboxAttempt, OutboxMessage
from policies.models import Mode, Policy, Risk

API_KEY_PREFIX = "cs_"
# Reviewers' personal access tokens (reviewers.models.PersonalAccessToken) start with this: the
# agent API refuses them by their prefix, and no agent key is ever issued with it.
REVIEWER_TOKEN_PREFIX = "cs_pat_"  # noqa: S105 (a prefix, not a secret)
# An action type as agents submit it (the API, the staff API and the pause service check names with it).
ACTION_TYPE_REGEX = r"^[a-z0-9][a-z0-9_.:-]{0,199}$"


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Agent(models.Model):
    """A program that asks before it acts. Authenticates with one or more API keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    is_active = models.BooleanField(default=True)
    default_callback_url = models.URLField(blank=True, max_length=2000)
    tags = models.JSONField(
        default=list, blank=True, help_text='Labels policy conditions can test: "finance" in agent.tags.'
    )
    action_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Action patterns this agent may request (globs allowed); anything else is blocked. Empty: no limit.",
    )
    # Encrypted at rest (core.fields): a database dump alone signs nothing.
    webhook_secret = EncryptedTextField(default=generate_webhook_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Containment (approvals.services.containment): empty means the COUNTERSIGN_ setting applies.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Submissions per minute for this agent, all keys together. Empty: the server default; 0: no limit.",
    )
    key_rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Submissions per minute for each of its API keys (never looser than the agent's). Empty: the default.",
    )
    max_pending = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests this agent may have waiting for a reviewer at once. Empty: the server default; 0: no cap.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    # DRF treats request.user as the authenticated principal.
    is_authenticated = True
    is_anonymous = False


class AgentKey(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, help_text="The first characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    action_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Action patterns this key may request, within the agent's own scope. Empty: the agent's scope.",
    )

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.agent.name})"


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
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="requests")
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
    reviewer_group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    on_expiry = models.CharField(max_length=10, default="reject")
    escalation_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pending_ttl_seconds = models.PositiveIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Set (compare-and-swap, once per deadline) when the deadline reminder went out.
    reminded_at = models.DateTimeField(null=True, blank=True)
    # Set by a pause (kill switch) on an approval whose run had not started: its start and report are refused,
    # for good (resuming does not give it back). See services.pauses.
    approval_revoked_at = models.DateTimeField(null=True, blank=True)
    approval_revoked_by = models.ForeignKey(
        "Pause", null=True, blank=True, on_delete=models.SET_NULL, related_name="revoked_requests"
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

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="audit_events")
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


class WebhookDelivery(OutboxMessage):
    """The agents' webhook outbox: written in the transaction that reached a final state, sent by Celery."""

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event_type = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()

    class Meta(OutboxMessage.Meta):
        indexes = [models.Index(fields=("next_attempt_at",), condition=Q(state="pending"), name="webhooks_due")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.url} ({self.state})"


class WebhookAttempt(OutboxAttempt):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")

    def __str__(self) -> str:
        return f"{self.status_code or self.error} at {self.attempted_at}"


class Vote(models.Model):
    """One reviewer's approval or rejection of a request that needs a quorum. One vote per reviewer."""

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="votes")
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


class ReviewerGroupNotifications(models.Model):
    """Where to tell a reviewer group that a request landed in its queue, or is close to its deadline.

    ``group`` empty: requests routed to no group (everyone's queue). At most one row per group,
    and at most one for everyone (checked in ``clean``).
    """

    group = models.OneToOneField(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="queue_notifications",
        help_text="Empty: requests routed to no group (everyone's queue).",
    )
    email_to = models.TextField(
        blank=True, help_text="Addresses to email, comma- or newline-separated (plain-text messages)."
    )
    email_members = models.BooleanField(
        default=False, help_text="Also email the group's active members who have an email address."
    )
    # The URL is the credential (anyone holding it can post to the channel): encrypted at rest.
    slack_webhook_url = EncryptedTextField(
        blank=True,
        max_length=2000,
        validators=[URLValidator()],
        help_text='A Slack-compatible incoming webhook: it receives {"text": ...}. Stored encrypted.',
    )
    notify_on_new = models.BooleanField(default=True, help_text="Tell them when a request lands in the queue.")
    remind_before_seconds = models.PositiveIntegerField(
        default=0, help_text="Remind them this long before a pending request's deadline; 0: no reminder."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "reviewer group notifications"
        verbose_name_plural = "reviewer group notifications"

    def __str__(self) -> str:
        return f"notifications for {self.group.name if self.group_id else 'everyone'}"

    def email_addresses(self) -> list[str]:
        return [part.strip() for part in self.email_to.replace("\n", ",").split(",") if part.strip()]

    def clean(self) -> None:
        for address in self.email_addresses():
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"email_to": f"{address!r} is not an email address."}) from None
        if self.slack_webhook_url:
            try:
                validate_outbound_url(self.slack_webhook_url, resolve=False)
            except InvalidInput as exc:
                raise ValidationError({"slack_webhook_url": exc.message}) from None
        if self.group_id is None:
            others = ReviewerGroupNotifications.objects.filter(group__isnull=True).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError("Notifications for everyone's queue are already configured.")


class QueueNotification(OutboxMessage):
    """One message to a reviewer group's channel about one request: an outbox row, sent by Celery and retried.

    Written in the transaction that puts the request in the queue (submitted pending,
    escalated) or claims its reminder, so a mail server, Slack, Redis or worker outage
    delays the message but loses none. ``target`` is fixed when it is written: the
    addresses (comma-separated) or the webhook URL the group's row named then.
    """

    class Kind(models.TextChoices):
        NEW = "new", "new request"
        REMINDER = "reminder", "deadline reminder"

    class Channel(models.TextChoices):
        EMAIL = "email", "email"
        SLACK = "slack", "Slack-compatible webhook"

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed (gave up)"
        SKIPPED = "skipped", "skipped (left the queue first)"

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="group_notifications")
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The reviewer group it was routed to; empty: everyone's queue.",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # A copy of the group's Slack URL (a credential) or addresses: encrypted like the row it was copied from.
    target = EncryptedTextField(help_text="The comma-separated addresses, or the webhook URL, when it was written.")
    # The shared states and one of its own: a request that left the group's queue is never sent.
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)

    class Meta(OutboxMessage.Meta):
        indexes = [
            models.Index(fields=("next_attempt_at",), condition=Q(state="pending"), name="queue_notifications_due")
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel} ({self.state})"


class QueueNotificationAttempt(OutboxAttempt):
    notification = models.ForeignKey(QueueNotification, on_delete=models.CASCADE, related_name="attempt_log")

    def __str__(self) -> str:
        return f"{self.notification_id} at {self.attempted_at}: {self.error or self.status_code or 'sent'}"


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


class AfterReviewLabel(models.Model):
    """A reviewer's judgement of a request that ran without one: was letting it through right?

    Evaluation data, like a decision: ``fine``, or flagged (``should_have_asked``,
    ``should_have_blocked``) with a reason category. One per request (the first reviewer wins).
    """

    request = models.OneToOneField(ActionRequest, on_delete=models.CASCADE, related_name="after_review_label")
    label = models.CharField(max_length=20, choices=AfterReviewLabelKind.choices)
    reason_category = models.CharField(max_length=50, blank=True)
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reviewer_username = models.CharField(max_length=150)
    surface = models.CharField(max_length=10, choices=Surface.choices, default=Surface.WEB)
    labelled_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=("-labelled_at",), name="after_review_labels_by_time")]

    def __str__(self) -> str:
        return f"{self.label} by {self.reviewer_username}"

    @property
    def flagged(self) -> bool:
        return self.label != AfterReviewLabelKind.FINE
