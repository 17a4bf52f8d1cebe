"""Web Push to reviewers' devices: the message, its encryption (RFC 8291) and VAPID signature (RFC 8292).

On when COUNTERSIGN_VAPID_PUBLIC_KEY, COUNTERSIGN_VAPID_PRIVATE_KEY and COUNTERSIGN_VAPID_SUBJECT
are set (``manage.py generate_vapid_keys``). Each device a reviewer enabled is a
``PushSubscription``; each message an outbox row (``QueueNotification`` channel ``push``), written
with the event like every other notification. The payload is encrypted to the device: it may
carry the push decision token that lets the device's Approve action decide as that reviewer
(``push_decision_token``), and only that device can read it. The push service's URL passes the
outbound-network guard and is dialled at the address it approved, like a webhook.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from py_vapid import Vapid02
from pywebpush import WebPusher

from core.errors import InvalidInput, PermissionRefused
from core.netguard import pinned_post
from core.outbox import Undeliverable

from .models import ActionRequest, PushSubscription
from .slack import card_link

DECISION_SALT = "countersign.approvals.push-decision"
PUSH_TTL_SECONDS = 12 * 3600
TITLE_MAX, BODY_MAX = 120, 240


def push_enabled() -> bool:
    return bool(
        settings.COUNTERSIGN_VAPID_PUBLIC_KEY
        and settings.COUNTERSIGN_VAPID_PRIVATE_KEY
        and settings.COUNTERSIGN_VAPID_SUBJECT
    )


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class PushDecision:
    user_id: Any
    request_id: str
    revision: int


def push_decision_token(*, user_id: Any, request: ActionRequest) -> str:
    """Lets the device's Approve action decide this request, at this revision, as this reviewer (session too)."""
    return signing.dumps({"u": user_id, "r": str(request.pk), "v": request.revision}, salt=DECISION_SALT, compress=True)


def push_decision_read(token: str, *, user_id: Any) -> PushDecision:
    try:
        data = signing.loads(token, salt=DECISION_SALT, max_age=PUSH_TTL_SECONDS * 2)
    except signing.BadSignature:
        raise InvalidInput(
            "This notification's action is no longer valid: open the request instead.", code="push_token_invalid"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("v"), int) or not isinstance(data.get("r"), str):
        raise InvalidInput("This notification's action is not one Countersign sent.", code="push_token_invalid")
    if data.get("u") != user_id:
        raise PermissionRefused("This notification was sent to another reviewer.", code="push_token_not_yours")
    return PushDecision(user_id=data["u"], request_id=data["r"], revision=data["v"])


def push_payload(request: ActionRequest, *, kind: str, user_id: Any) -> dict[str, Any]:
    """What the device shows (plain text: the Notification API renders no markup) and its actions need."""
    headline = "Review" if kind == "new" else "Reminder"
    return {
        "title": _cut(f"{headline}: {request.action_type} from {request.agent.name}", TITLE_MAX),
        "body": _cut(request.summary, BODY_MAX),
        "request_id": str(request.pk),
        "revision": request.revision,
        "kind": kind,
        "url": card_link(request),
        "decide_url": f"{settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}/queue/push/decide",
        "token": push_decision_token(user_id=user_id, request=request),
    }


def push_send(subscription: PushSubscription, payload: dict[str, Any]) -> int:
    """Encrypt ``payload`` to the device (aes128gcm), sign with VAPID, POST it to its push service.

    Raises ``Undeliverable`` when the push service says the subscription is gone (404, 410): the
    subscription is deleted, and the message is not retried.
    """
    info = {"endpoint": subscription.endpoint, "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
    encoded = WebPusher(info).encode(json.dumps(payload).encode(), content_encoding="aes128gcm")
    vapid = Vapid02.from_string(settings.COUNTERSIGN_VAPID_PRIVATE_KEY)
    endpoint = urlsplit(subscription.endpoint)
    audience = f"{endpoint.scheme}://{endpoint.netloc}"
    headers = {
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
        "ttl": str(PUSH_TTL_SECONDS),
        "urgency": "high",
        **vapid.sign({"sub": settings.COUNTERSIGN_VAPID_SUBJECT, "aud": audience}),
    }
    status = pinned_post(subscription.endpoint, content=encoded["body"], headers=headers)
    if status in (404, 410):
        # By query: the outbox row in hand still names it (the database empties its link).
        PushSubscription.objects.filter(pk=subscription.pk).delete()
        raise Undeliverable(f"HTTP {status}: the push service says this device's subscription is gone; removed.")
    return status
