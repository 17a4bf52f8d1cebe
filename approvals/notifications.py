"""Telling reviewer groups, outside the browser, that a request waits for them.

When a request lands in a queue (submitted pending, or escalated to another group) and
again when it is close to its deadline, the group's ``ReviewerGroupNotifications`` row says
where to tell: plain-text email (Django's email backends) and/or a Slack-compatible incoming
webhook (``{"text": ...}``). Each message is a ``QueueNotification`` outbox row written in the
transaction that causes it, sent by a Celery task queued after commit (never in a request
thread), one ``QueueNotificationAttempt`` per try, retried by the beat sweep with the outbox's
backoff (``core.outbox``) until COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS. Agent-supplied text
(summary, agent name, action type) stays plain: the email has no HTML part, and Slack's control characters ``& < >`` are escaped so an agent can
neither link nor mention (``<!channel>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from slack_sdk.errors import SlackApiError

from core.dispatch import enqueue, enqueue_each_on_commit
from core.errors import InvalidInput
from core.netguard import pinned_post
from core.outbox import Undeliverable, outbox_attempt, outbox_due, outbox_resend
from core.timefmt import isoformat, time_left

from .email_links import email_decision_link
from .models import (
    ActionRequest,
    PushSubscription,
    QueueNotification,
    ReviewerGroupNotifications,
    SlackMessage,
    Status,
)
from .push import push_enabled, push_payload, push_send
from .slack import final_message, pending_message, slack_client, slack_escape
from .visibility import reviewers_who_may_see

Kind = Literal["new", "reminder", "update"]
DELIVER_TASK = "approvals.tasks.deliver_queue_notification"
REMINDER_BATCH = 500
SUBJECT_MAX = 150


def queue_link() -> str:
    return f"{settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}/queue/"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def notification_lines(request: ActionRequest, *, kind: Kind, now: datetime) -> tuple[str, list[tuple[str, str]]]:
    """The headline and (label, value) lines of a message; values are agent text, not yet escaped."""
    headline = "A request is waiting for review" if kind == "new" else "Reminder: a request is close to its deadline"
    lines = [
        ("Action", request.action_type),
        ("Agent", request.agent.name),
        ("Summary", _one_line(request.summary)),
        ("Risk", request.risk),
        ("Time left", f"{time_left(request.expires_at, now=now)} (deadline {isoformat(request.expires_at)})"),
    ]
    if request.reviewer_group_id:
        lines.append(("Reviewer group", request.reviewer_group.name))
    return headline, lines


def email_message(
    request: ActionRequest, *, kind: Kind, now: datetime, links_for: QueueNotification | None = None
) -> tuple[str, str]:
    """The subject and plain-text body; an email to one reviewer (``links_for.reviewer_id``) adds their links."""
    headline, lines = notification_lines(request, kind=kind, now=now)
    prefix = "[Countersign] " + ("Review" if kind == "new" else "Reminder") + ": "
    # One line only: a header never carries the agent's line breaks.
    subject = _one_line(f"{prefix}{request.action_type} from {request.agent.name}")[:SUBJECT_MAX]
    footer = [f"Review it: {queue_link()}"]
    if links_for is not None and links_for.reviewer_id is not None:
        footer = [
            f"Approve: {email_decision_link(links_for, decision='approve', revision=request.revision)}",
            f"Reject: {email_decision_link(links_for, decision='reject', revision=request.revision)}",
            "",
            "Each link opens the request for you to confirm (signed in); it decides nothing by itself,",
            "works once, and only for you.",
            f"The queue: {queue_link()}",
        ]
    body = "\n".join([headline, "", *(f"{label}: {value}" for label, value in lines), "", *footer])
    return subject, body + "\n"


def slack_text(request: ActionRequest, *, kind: Kind, now: datetime) -> str:
    headline, lines = notification_lines(request, kind=kind, now=now)
    link = queue_link()
    # Our own link is the only markup; everything else is escaped text.
    open_link = f"<{link}|Open the queue>" if link.startswith(("http://", "https://")) else slack_escape(link)
    return "\n".join(
        [f"*{slack_escape(headline)}*", *(f"{label}: {slack_escape(str(value))}" for label, value in lines), open_link]
    )


def _config_for_group(group_id: Any) -> ReviewerGroupNotifications | None:
    return (
        ReviewerGroupNotifications.objects.filter(group_id=group_id).first()
        if group_id is not None
        else ReviewerGroupNotifications.objects.filter(group__isnull=True).first()
    )


def _config_for(request: ActionRequest) -> ReviewerGroupNotifications | None:
    return _config_for_group(request.reviewer_group_id)


def _email_recipients(config: ReviewerGroupNotifications) -> list[tuple[str, Any]]:
    """(addresses, reviewer id) per email to write: the listed addresses together, then each member alone.

    A member's email carries their own one-click decision links, so it is theirs only; a listed
    address that is also a member's gets the member's email instead.
    """
    members: list[tuple[Any, str]] = []
    if config.email_members and config.group_id is not None:
        members = list(
            get_user_model()
            .objects.filter(groups=config.group_id, is_active=True)
            .exclude(email="")
            .order_by("pk")
            .values_list("pk", "email")
        )
    member_addresses = {email.lower() for _, email in members}
    listed = [a for a in dict.fromkeys(config.email_addresses()) if a.lower() not in member_addresses]
    return ([(",".join(listed), None)] if listed else []) + [(email, pk) for pk, email in members]


def slack_post(url: str, text: str, *, client: httpx.Client | None = None) -> int:
    """POST ``{"text": ...}`` to an incoming webhook, dialling the address the SSRF check approved.

    Returns the status code, whatever it is: the outbox counts a non-2xx answer as a failed try.
    """
    return pinned_post(url, json={"text": text}, headers={"user-agent": "Countersign-Notifications/1"}, client=client)


def _write_outbox_rows(
    config: ReviewerGroupNotifications, *, request_id: Any, kind: Kind, now: datetime
) -> list[QueueNotification]:
    """One row per channel the group's configuration names, email first."""
    rows = [(QueueNotification.Channel.EMAIL, target, reviewer) for target, reviewer in _email_recipients(config)]
    if config.slack_webhook_url:
        rows.append((QueueNotification.Channel.SLACK, config.slack_webhook_url, None))
    if config.slack_bot_token and config.slack_channel:
        rows.append((QueueNotification.Channel.SLACK_APP, config.slack_channel, None))
        ActionRequest.objects.filter(pk=request_id, slack_announced=False).update(slack_announced=True)
    written = QueueNotification.objects.bulk_create(
        [
            QueueNotification(
                request_id=request_id,
                group_id=config.group_id,
                kind=kind,
                channel=channel,
                target=target,
                reviewer_id=reviewer,
                next_attempt_at=now,
                created_at=now,
            )
            for channel, target, reviewer in rows
        ]
    )
    return written + _write_push_rows(request_id=request_id, group_id=config.group_id, kind=kind, now=now)


def _write_push_rows(*, request_id: Any, group_id: Any, kind: Kind, now: datetime) -> list[QueueNotification]:
    """One Web Push row per device of each reviewer who may see the request (when push is configured)."""
    if not push_enabled():
        return []
    devices = PushSubscription.objects.filter(user__in=reviewers_who_may_see(group_id=group_id)).values_list(
        "pk", "user_id"
    )
    return QueueNotification.objects.bulk_create(
        [
            QueueNotification(
                request_id=request_id,
                group_id=group_id,
                kind=kind,
                channel=QueueNotification.Channel.PUSH,
                target="",
                reviewer_id=user_id,
                push_subscription_id=subscription_id,
                next_attempt_at=now,
                created_at=now,
            )
            for subscription_id, user_id in devices
        ]
    )


def queue_notifications_create(
    *, request: ActionRequest, kind: Kind, now: datetime, deliver_after_commit: bool = True
) -> list[QueueNotification]:
    """Write the outbox rows telling the request's group that it waits (``kind="new"``).

    Invariant: called inside the transaction that put the request in the queue, so the rows
    exist exactly when that change does; a rolled-back submission or escalation sends nothing.
    Delivery is queued after commit; the beat sweep retries what fails or never got queued.
    """
    config = _config_for(request)
    if config is None:
        # No group channels: reviewers' own devices still hear of it.
        rows = _write_push_rows(request_id=request.pk, group_id=request.reviewer_group_id, kind=kind, now=now)
    elif kind == "new" and not config.notify_on_new:
        return []
    else:
        rows = _write_outbox_rows(config, request_id=request.pk, kind=kind, now=now)
    if deliver_after_commit:
        enqueue_each_on_commit(DELIVER_TASK, [row.pk for row in rows])
    return rows


def queue_notifications_deliver(notification_ids: Iterable[Any]) -> None:
    """Queue one Celery task per outbox row, now; call after commit.

    A broker outage is logged and leaves the rows due: the beat sweep sends them once it is back.
    """
    for notification_id in notification_ids:
        enqueue(DELIVER_TASK, str(notification_id))


def _skip_if_left_queue(notification_id: Any) -> bool:
    """Mark a pending row skipped when its request is no longer waiting in the group it names.

    An update of a posted Slack message is never skipped: it says how the request left.
    """
    row = (
        QueueNotification.objects.filter(pk=notification_id, state=QueueNotification.State.PENDING)
        .values_list("kind", "group_id", "request__status", "request__reviewer_group_id")
        .first()
    )
    if row is None:
        return False
    kind, group_id, status, request_group_id = row
    if kind == QueueNotification.Kind.UPDATE or (status == Status.PENDING and request_group_id == group_id):
        return False
    return bool(
        QueueNotification.objects.filter(pk=notification_id, state=QueueNotification.State.PENDING).update(
            state=QueueNotification.State.SKIPPED, last_error="The request left this group's queue before it was sent."
        )
    )


def queue_notification_attempt(*, notification_id: Any, client: httpx.Client | None = None) -> QueueNotification | None:
    """Try one outbox row once; record the attempt; schedule the next or give up after the max age.

    Nothing is sent about a request that left the group's queue (decided, expired, cancelled,
    escalated elsewhere) before the row went out: the row is skipped. Invariant: the row is
    claimed before anything is sent, so two workers never send the same attempt (``outbox_attempt``).
    """
    if _skip_if_left_queue(notification_id):
        return None

    def send(row: QueueNotification, now: datetime) -> int | None:
        if row.channel == QueueNotification.Channel.PUSH:
            return _push_send(row, now=now)
        if row.channel == QueueNotification.Channel.SLACK_APP:
            return _slack_app_send(row, now=now)
        if row.channel == QueueNotification.Channel.SLACK:
            return slack_post(row.target, slack_text(row.request, kind=row.kind, now=now), client=client)
        subject, body = email_message(row.request, kind=row.kind, now=now, links_for=row)
        send_mail(subject=subject, message=body, from_email=None, recipient_list=row.target.split(","))
        return None

    # OSError covers smtplib's errors (SMTPException is one), refused connections and timeouts.
    return outbox_attempt(
        QueueNotification,
        pk=notification_id,
        send=send,
        retry_on=(httpx.HTTPError, OSError),
        select_related=("request__agent", "request__reviewer_group", "push_subscription"),
    )


def _push_send(row: QueueNotification, *, now: datetime) -> int:
    subscription = row.push_subscription
    if subscription is None:
        raise Undeliverable("The device's push subscription was removed.")
    if not push_enabled():
        raise InvalidInput("Web Push is not configured (COUNTERSIGN_VAPID_PUBLIC_KEY, _PRIVATE_KEY, _SUBJECT).")
    status = push_send(subscription, push_payload(row.request, kind=row.kind, user_id=row.reviewer_id))
    if 200 <= status < 300:
        PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=now)
    return status


def _in_group_queue(request: ActionRequest, group_id: Any) -> bool:
    return request.status == Status.PENDING and request.reviewer_group_id == group_id


def _slack_message_for(request: ActionRequest, *, group_id: Any, kind: str) -> tuple[str, list[dict[str, Any]]]:
    return pending_message(request, kind=kind) if _in_group_queue(request, group_id) else final_message(request)


def _slack_app_send(row: QueueNotification, *, now: datetime) -> int:
    """Post the request with its buttons (and remember where), or update a posted message in place.

    A request that left the group's queue while it was being posted is updated at once, so no
    message keeps buttons for a request that no longer waits. Slack's ``ok: false`` answers are
    recorded as the attempt's error and retried like a refused connection.
    """
    config = _config_for_group(row.group_id)
    if config is None or not config.slack_bot_token:
        raise InvalidInput("The group's Slack app is no longer configured (bot token missing).")
    client = slack_client(config.slack_bot_token)
    request = row.request
    try:
        if row.kind == QueueNotification.Kind.UPDATE:
            channel, _, ts = row.target.partition(" ")
            text, blocks = _slack_message_for(request, group_id=row.group_id, kind="new")
            client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            return 200
        text, blocks = pending_message(request, kind=row.kind)
        answer = client.chat_postMessage(channel=row.target, text=text, blocks=blocks, unfurl_links=False)
        with transaction.atomic():
            # Under the request's row lock: a transition either committed before (seen here, the message
            # is updated now) or runs after and finds this message to update (slack_messages_refresh).
            request = (
                ActionRequest.objects.select_for_update(of=("self",))
                .select_related("agent", "reviewer_group")
                .get(pk=request.pk)
            )
            posted = SlackMessage.objects.create(
                request=request, group_id=row.group_id, channel=answer["channel"], ts=answer["ts"], posted_at=now
            )
        if not _in_group_queue(request, row.group_id):
            text, blocks = final_message(request)
            client.chat_update(channel=posted.channel, ts=posted.ts, text=text, blocks=blocks)
    except SlackApiError as exc:
        raise InvalidInput(f"Slack answered {exc.response.status_code}: {exc.response.get('error')}") from None
    return 200


def slack_messages_refresh(request: ActionRequest, *, now: datetime) -> list[QueueNotification]:
    """Write an update row for each Slack message of this request; call in the transaction that changed it.

    Invariant: every change a posted message shows (a decision anywhere, expiry, cancellation,
    escalation, a quorum vote) writes its update in the same transaction, so it is retried until
    Slack has it, never lost. A message posted after this commit shows the new state itself.
    """
    if not request.slack_announced:
        return []
    messages = list(SlackMessage.objects.filter(request_id=request.pk).values_list("group_id", "channel", "ts"))
    if not messages:
        return []
    rows = QueueNotification.objects.bulk_create(
        [
            QueueNotification(
                request_id=request.pk,
                group_id=group_id,
                kind=QueueNotification.Kind.UPDATE,
                channel=QueueNotification.Channel.SLACK_APP,
                target=f"{channel} {ts}",
                next_attempt_at=now,
                created_at=now,
            )
            for group_id, channel, ts in messages
        ]
    )
    enqueue_each_on_commit(DELIVER_TASK, [row.pk for row in rows])
    return rows


def queue_notifications_due(*, limit: int = 100) -> list[Any]:
    return outbox_due(QueueNotification, limit=limit)


def queue_notification_resend(*, notification_id: Any) -> None:
    """Admins re-send a message (delivered, skipped or given up): it goes back to the outbox, due now."""
    outbox_resend(QueueNotification, pks=[notification_id])


def action_request_notify(*, request_id: Any, kind: Kind) -> list[str]:
    """Write the group's outbox rows for one pending request and try each once, here; returns the channels delivered.

    For callers already off the request thread (``notify_request``, tasks queued before the
    outbox existed). A channel that fails stays in the outbox for the sweep and does not stop
    the others. Nothing is written for a request that is no longer pending.
    """
    with transaction.atomic():
        request = ActionRequest.objects.filter(pk=request_id, status=Status.PENDING).first()
        if request is None:
            return []
        rows = queue_notifications_create(request=request, kind=kind, now=timezone.now(), deliver_after_commit=False)
    delivered = []
    for row in rows:
        attempted = queue_notification_attempt(notification_id=row.pk)
        if attempted is not None and attempted.state == QueueNotification.State.DELIVERED:
            delivered.append(row.channel)
    return delivered


def action_requests_remind_due(*, now: datetime | None = None, batch: int = REMINDER_BATCH) -> list[Any]:
    """Claim the pending requests that entered their group's reminder window; returns their ids.

    Invariant: a request is reminded at most once per deadline. The claim is a
    compare-and-swap (``reminded_at`` from NULL to now) whose row count says who won, so
    two beats, or two workers running this at once, never both remind; the reminder's
    outbox rows are written in the claim's transaction. The caller queues their delivery
    (``queue_notifications_deliver_reminders``) once this has returned, i.e. after commit.
    """
    now = now or timezone.now()
    claimed: list[Any] = []
    for config in ReviewerGroupNotifications.objects.filter(remind_before_seconds__gt=0):
        in_group = Q(reviewer_group__isnull=True) if config.group_id is None else Q(reviewer_group_id=config.group_id)
        due = (
            ActionRequest.objects.filter(
                in_group,
                status=Status.PENDING,
                reminded_at__isnull=True,
                expires_at__gt=now,
                expires_at__lte=now + timedelta(seconds=config.remind_before_seconds),
            )
            .order_by("expires_at")
            .values_list("pk", flat=True)[:batch]
        )
        for request_id in list(due):
            with transaction.atomic():
                won = ActionRequest.objects.filter(
                    pk=request_id, status=Status.PENDING, reminded_at__isnull=True, expires_at__gt=now
                ).update(reminded_at=now)
                if won:
                    _write_outbox_rows(config, request_id=request_id, kind="reminder", now=now)
                    claimed.append(request_id)
    return claimed


def queue_notifications_deliver_reminders(*, request_ids: list[Any]) -> None:
    """Queue delivery of the reminder rows just written for these requests (not yet tried)."""
    queue_notifications_deliver(
        QueueNotification.objects.filter(
            request_id__in=request_ids,
            kind=QueueNotification.Kind.REMINDER,
            state=QueueNotification.State.PENDING,
            attempts=0,
        ).values_list("pk", flat=True)
    )
