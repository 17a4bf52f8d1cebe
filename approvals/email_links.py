"""One-click decision links in a reviewer's notification email: signed, expiring, for one reviewer, usable once.

A link names the email it was sent in (a ``QueueNotification`` row with its ``reviewer``), the
decision it preselects and the revision the email showed. Opening it decides nothing: mail
scanners follow links. The page it opens needs that reviewer's session and shows one confirm
button, and the confirming POST (CSRF-protected) uses the link up
(``services.action_request_decide_by_email_link``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing

from core.errors import InvalidInput, PermissionRefused

from .models import QueueNotification

SALT = "countersign.approvals.email-decision"
Choice = Literal["approve", "reject"]


@dataclass(frozen=True)
class EmailLink:
    notification: QueueNotification
    decision: Choice
    revision: int


def email_decision_link(row: QueueNotification, *, decision: Choice, revision: int) -> str:
    token = signing.dumps({"n": str(row.pk), "d": decision, "v": revision}, salt=SALT, compress=True)
    return f"{settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}/queue/email/?t={token}"


def email_link_read(*, token: str, reviewer: AbstractBaseUser) -> EmailLink:
    """The link ``token`` is, if it is genuine, unexpired and ``reviewer``'s; otherwise a refusal saying why.

    Whether it was used already is the caller's to show (``notification.link_used_at``).
    """
    try:
        data: Any = signing.loads(token, salt=SALT, max_age=settings.COUNTERSIGN_EMAIL_LINK_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise InvalidInput(
            "This link has expired. Open the queue to decide the request, if it is still waiting.",
            code="link_expired",
        ) from None
    except signing.BadSignature:
        raise InvalidInput("This link is not one Countersign sent, or it was cut short.", code="link_invalid") from None
    if (
        not isinstance(data, dict)
        or data.get("d") not in ("approve", "reject")
        or not isinstance(data.get("v"), int)
        or not isinstance(data.get("n"), str)
    ):
        raise InvalidInput("This link is not one Countersign sent, or it was cut short.", code="link_invalid")
    try:
        notification_id = uuid.UUID(data["n"])
    except ValueError:
        raise InvalidInput("This link is not one Countersign sent, or it was cut short.", code="link_invalid") from None
    row = (
        QueueNotification.objects.select_related("request")
        .filter(pk=notification_id, channel=QueueNotification.Channel.EMAIL)
        .first()
    )
    if row is None or row.reviewer_id is None:
        raise InvalidInput("This link is not one Countersign sent, or it was cut short.", code="link_invalid")
    if row.reviewer_id != reviewer.pk:
        raise PermissionRefused(
            "This link was sent to another reviewer: a forwarded link does not let anyone else decide. "
            "Open the queue to decide as yourself.",
            code="link_not_yours",
        )
    return EmailLink(notification=row, decision=data["d"], revision=data["v"])
