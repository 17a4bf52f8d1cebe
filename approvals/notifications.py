"""Telling reviewer groups, outside the browser, that a request waits for them.

When a request lands in a queue (submitted pending, or escalated to another group) and
again when it is close to its deadline, the group's ``ReviewerGroupNotifications`` row says
where to tell: plain-text email (Django's email backends) and/or a Slack-compatible incoming
webhook (``{"text": ...}``). Everything here runs in Celery tasks queued after commit, never
in a request thread. Agent-supplied text (summary, agent name, action type) stays plain: the
email has no HTML part, and Slack's control characters ``& < >`` are escaped so an agent can
neither link nor mention (``<!channel>``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from .errors import InvalidInput
from .models import ActionRequest, ReviewerGroupNotifications, Status
from .representation import isoformat
from .webhooks import outbound_address

logger = logging.getLogger(__name__)

Kind = Literal["new", "reminder"]
REMINDER_BATCH = 500
SUBJECT_MAX = 150


def slack_escape(text: str) -> str:
    """Slack's rule for message text: only these three characters are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def time_left(expires_at: datetime | None, *, now: datetime) -> str:
    if expires_at is None:
        return "no deadline"
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "past its deadline"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min left"
    if minutes:
        return f"{minutes} min left"
    return f"{seconds} s left"


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


def email_message(request: ActionRequest, *, kind: Kind, now: datetime) -> tuple[str, str]:
    headline, lines = notification_lines(request, kind=kind, now=now)
    prefix = "[Countersign] " + ("Review" if kind == "new" else "Reminder") + ": "
    # One line only: a header never carries the agent's line breaks.
    subject = _one_line(f"{prefix}{request.action_type} from {request.agent.name}")[:SUBJECT_MAX]
    body = "\n".join([headline, "", *(f"{label}: {value}" for label, value in lines), "", f"Review it: {queue_link()}"])
    return subject, body + "\n"


def slack_text(request: ActionRequest, *, kind: Kind, now: datetime) -> str:
    headline, lines = notification_lines(request, kind=kind, now=now)
    link = queue_link()
    # Our own link is the only markup; everything else is escaped text.
    open_link = f"<{link}|Open the queue>" if link.startswith(("http://", "https://")) else slack_escape(link)
    return "\n".join(
        [f"*{slack_escape(headline)}*", *(f"{label}: {slack_escape(str(value))}" for label, value in lines), open_link]
    )


def _config_for(request: ActionRequest) -> ReviewerGroupNotifications | None:
    return (
        ReviewerGroupNotifications.objects.filter(group_id=request.reviewer_group_id).first()
        if request.reviewer_group_id is not None
        else ReviewerGroupNotifications.objects.filter(group__isnull=True).first()
    )


def _recipients(config: ReviewerGroupNotifications) -> list[str]:
    addresses = config.email_addresses()
    if config.email_members and config.group_id is not None:
        members = (
            get_user_model()
            .objects.filter(groups=config.group_id, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
        addresses.extend(members)
    return list(dict.fromkeys(addresses))


def slack_post(url: str, text: str, *, client: httpx.Client | None = None) -> int:
    """POST ``{"text": ...}`` to an incoming webhook, dialling the address the SSRF check approved."""
    target = httpx.URL(url)
    pinned = target.copy_with(host=outbound_address(url))
    own = client or httpx.Client(timeout=settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        response = own.post(
            pinned,
            json={"text": text},
            headers={"host": target.netloc.decode("ascii"), "user-agent": "Countersign-Notifications/1"},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
    finally:
        if client is None:
            own.close()
    response.raise_for_status()
    return response.status_code


def action_request_notify(*, request_id: Any, kind: Kind) -> list[str]:
    """Send the group's channels a message about one pending request; returns the channels used.

    Nothing is sent for a request that left the queue before the task ran. A failing
    channel is logged and does not stop the others (the request is on the live queue anyway).
    """
    request = (
        ActionRequest.objects.select_related("agent", "reviewer_group")
        .filter(pk=request_id, status=Status.PENDING)
        .first()
    )
    if request is None:
        return []
    config = _config_for(request)
    if config is None or (kind == "new" and not config.notify_on_new):
        return []
    now = timezone.now()
    sent: list[str] = []
    recipients = _recipients(config)
    if recipients:
        subject, body = email_message(request, kind=kind, now=now)
        try:
            send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
            sent.append("email")
        except Exception:
            logger.exception("could not email %s notification for request %s", kind, request.pk)
    if config.slack_webhook_url:
        try:
            slack_post(config.slack_webhook_url, slack_text(request, kind=kind, now=now))
            sent.append("slack")
        except (httpx.HTTPError, InvalidInput) as exc:
            logger.warning("could not post %s notification for request %s to Slack: %s", kind, request.pk, exc)
    return sent


def queue_notification(request_id: Any, *, kind: Kind) -> None:
    """Queue the Celery task; call from ``transaction.on_commit``."""
    from .tasks import notify_request  # tasks import services, which import this module

    try:
        notify_request.delay(str(request_id), kind)
    except Exception:
        # The broker is down: the live queue still shows the request; only this message is lost.
        logger.warning("notification for request %s not queued: broker unavailable", request_id)


def action_requests_remind_due(*, now: datetime | None = None, batch: int = REMINDER_BATCH) -> list[Any]:
    """Claim the pending requests that entered their group's reminder window; returns their ids.

    Invariant: a request is reminded at most once per deadline. The claim is a
    compare-and-swap (``reminded_at`` from NULL to now) whose row count says who won, so
    two beats, or two workers running this at once, never both remind.
    """
    now = now or timezone.now()
    claimed: list[Any] = []
    configs = ReviewerGroupNotifications.objects.filter(remind_before_seconds__gt=0).values_list(
        "group_id", "remind_before_seconds"
    )
    for group_id, remind_before in configs:
        in_group = Q(reviewer_group__isnull=True) if group_id is None else Q(reviewer_group_id=group_id)
        due = (
            ActionRequest.objects.filter(
                in_group,
                status=Status.PENDING,
                reminded_at__isnull=True,
                expires_at__gt=now,
                expires_at__lte=now + timedelta(seconds=remind_before),
            )
            .order_by("expires_at")
            .values_list("pk", flat=True)[:batch]
        )
        for request_id in list(due):
            won = ActionRequest.objects.filter(
                pk=request_id, status=Status.PENDING, reminded_at__isnull=True, expires_at__gt=now
            ).update(reminded_at=now)
            if won:
                claimed.append(request_id)
    return claimed
