"""Outbound webhooks: URL safety, Standard Webhooks signatures, one delivery attempt."""

from __future__ import annotations

import ipaddress
import json
import socket
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.errors import InvalidInput

from .models import WebhookDelivery
from .outbox import outbox_attempt, outbox_due

# IPv6 ranges that carry an IPv4 address in their last 32 bits, which a gateway or the
# host's own stack may turn back into that IPv4 address (NAT64, IPv4-translated, IPv4-compatible).
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96")
)


def _address_is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if not ip.is_global or ip.is_multicast:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if any(ip in net for net in _EMBEDDING_IPV4):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return any(v4 is not None and (not v4.is_global or v4.is_multicast) for v4 in embedded)
    return False


def _http_url(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput("callback_url must be an http(s) URL with a host.", code="invalid_callback_url")
    return parts


def _host_addresses(parts: SplitResult, *, resolve: bool) -> list[str]:
    """The addresses the URL's host stands for ([] when it is a name and ``resolve`` is False)."""
    host = parts.hostname or ""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return ["127.0.0.1"]
    if not resolve:
        return []
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]
    except (socket.gaierror, ValueError):
        raise InvalidInput(f"callback_url host {host!r} does not resolve.", code="invalid_callback_url") from None


def _refuse_private(addresses: list[str]) -> None:
    if any(_address_is_private(a) for a in addresses):
        raise InvalidInput(
            "callback_url points at a private, loopback or reserved address, which is refused "
            "(set COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE=true to allow it on a trusted network).",
            code="callback_url_not_allowed",
        )


def validate_outbound_url(url: str, *, resolve: bool = True) -> str:
    """Refuse what would turn the gateway into a proxy into our own network (SSRF).

    http(s) only; hosts that are or resolve to loopback, private, link-local or
    reserved addresses are refused unless COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE is set.
    """
    parts = _http_url(url)
    if not settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE:
        _refuse_private(_host_addresses(parts, resolve=resolve))
    return url


def outbound_address(url: str) -> str:
    """Resolve the URL's host once, refuse it as validate_outbound_url does, and return the address to dial.

    Connecting to this very address (not resolving the name again) closes the DNS
    rebinding gap: a name that answers a public address to the check and a private
    one to the HTTP client a millisecond later never reaches the private one.
    """
    addresses = _host_addresses(_http_url(url), resolve=True)
    if not settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE:
        _refuse_private(addresses)
    return addresses[0]


def webhook_sign(*, secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, timestamp, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "Countersign-Webhooks/1",
    }


def webhook_delivery_attempt(*, delivery_id: Any, client: httpx.Client | None = None) -> WebhookDelivery | None:
    """Try one delivery once; record the attempt; schedule the next or give up after the max age.

    Invariant: a delivery is claimed (its next attempt pushed forward) before the
    HTTP call, so two workers never send the same attempt at once (``outbox_attempt``).
    """
    return outbox_attempt(
        WebhookDelivery,
        pk=delivery_id,
        send=lambda delivery, now: _post_delivery(delivery, now=now, client=client),
        select_related=("request__agent",),
        record_status_code=True,
    )


def _post_delivery(delivery: WebhookDelivery, *, now: datetime, client: httpx.Client | None) -> int:
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = webhook_sign(
        secret=delivery.request.agent.webhook_secret, message_id=str(delivery.id), timestamp=now, body=body
    )
    target = httpx.URL(delivery.url)
    pinned = target.copy_with(host=outbound_address(delivery.url))
    own_client = client or httpx.Client(timeout=settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        response = own_client.post(
            pinned,
            content=body.encode(),
            headers={**headers, "host": target.netloc.decode("ascii")},
            # TLS still verifies the certificate against the name, not the address.
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
    finally:
        if client is None:
            own_client.close()
    return response.status_code


def webhook_deliveries_due(*, limit: int = 100) -> list[Any]:
    return outbox_due(WebhookDelivery, limit=limit)


def webhook_delivery_resend(*, delivery_id: Any) -> None:
    """Admins re-send a delivery (delivered or given up): it goes back to the outbox, due now."""
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        state=WebhookDelivery.State.PENDING, next_attempt_at=timezone.now()
    )
