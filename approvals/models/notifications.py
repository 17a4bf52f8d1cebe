"""What is sent outside: agents' webhooks and reviewer-group notifications (outbox rows)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models
from django.db.models import Q

from core.errors import InvalidInput
from core.fields import EncryptedTextField
from core.netguard import validate_outbound_url
from core.outbox import OutboxAttempt, OutboxMessage

from .requests import ActionRequest


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
    # A Slack app with interactive buttons (README "Reviewing from anywhere → Slack"): all three, or none.
    slack_bot_token = EncryptedTextField(
        blank=True, max_length=500, help_text="The Slack app's bot token (xoxb-…): posts and updates. Stored encrypted."
    )
    slack_signing_secret = EncryptedTextField(
        blank=True,
        max_length=500,
        help_text="The Slack app's signing secret: verifies its button clicks. Stored encrypted.",
    )
    slack_channel = models.CharField(
        max_length=100, blank=True, help_text="The channel ID (C…) the app posts requests to, with Approve and Reject."
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
        slack_app = (self.slack_bot_token, self.slack_signing_secret, self.slack_channel)
        if any(slack_app) and not all(slack_app):
            raise ValidationError("A Slack app needs its bot token, its signing secret and a channel ID: all three.")
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
        UPDATE = "update", "message update"

    class Channel(models.TextChoices):
        EMAIL = "email", "email"
        SLACK = "slack", "Slack-compatible webhook"
        SLACK_APP = "slack_app", "Slack app (interactive)"
        PUSH = "push", "Web Push"

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
    # An email to one member of the group: it carries that reviewer's one-click decision links,
    # usable once (``link_used_at``), by that reviewer only (approvals.email_links).
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    link_used_at = models.DateTimeField(null=True, blank=True)
    # A Web Push message to one of a reviewer's devices; emptied when the push service says it is gone.
    push_subscription = models.ForeignKey(
        "PushSubscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A copy of the group's Slack URL (a credential) or addresses: encrypted like the row it was copied from.
    target = EncryptedTextField(
        help_text="The comma-separated addresses, the webhook URL, or the Slack channel (and message ts of an update)."
    )
    # The shared states and one of its own: a request that left the group's queue is never sent.
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)

    class Meta(OutboxMessage.Meta):
        indexes = [
            models.Index(fields=("next_attempt_at",), condition=Q(state="pending"), name="queue_notifications_due")
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel} ({self.state})"


class PushSubscription(models.Model):
    """One device on which a reviewer enabled push (a browser's PushSubscription, RFC 8030)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000, unique=True, help_text="The push service's URL for this device.")
    p256dh = models.CharField(max_length=200, help_text="The device's public key (P-256, base64url).")
    # With p256dh it lets anyone encrypt to the device: kept encrypted at rest.
    auth = EncryptedTextField(help_text="The device's authentication secret (base64url). Stored encrypted.")
    device = models.CharField(max_length=200, blank=True, help_text="The browser that subscribed, as it said.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} on {self.device or 'a device'}"


class QueueNotificationAttempt(OutboxAttempt):
    notification = models.ForeignKey(QueueNotification, on_delete=models.CASCADE, related_name="attempt_log")

    def __str__(self) -> str:
        return f"{self.notification_id} at {self.attempted_at}: {self.error or self.status_code or 'sent'}"


class SlackMessage(models.Model):
    """A request as posted to a Slack channel by the group's app: where to update it in place."""

    request = models.ForeignKey(ActionRequest, on_delete=models.CASCADE, related_name="slack_messages")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=100)
    ts = models.CharField(max_length=40, help_text="Slack's id of the message in its channel.")
    posted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("channel", "ts"), name="one_row_per_slack_message")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.ts}"
