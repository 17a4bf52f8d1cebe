"""The outbound-network guard: where the gateway may send an HTTP request, and the one way it sends.

Every URL the gateway posts to (agents' callbacks, reviewer groups' Slack webhooks, the
alert webhook) is chosen by someone else, so without this guard the gateway is a proxy
into its own network (SSRF). ``validate_outbound_url`` refuses such a URL when it is
saved; ``pinned_post`` refuses it again when it is sent, and dials the very address it
checked.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
from django.conf import settings

from .errors import InvalidInput

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


# The messages name callback_url, the field agents send: API clients and tests read these codes.
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


def pinned_post(
    url: str,
    *,
    content: bytes | None = None,
    json: Any = None,
    headers: dict[str, str],
    client: httpx.Client | None = None,
) -> int:
    """POST to ``url`` at the address the guard approved; return the status code, whatever it is.

    The name is resolved once (``outbound_address``, which raises ``InvalidInput`` for a
    refused URL) and that address is dialled; the Host header and, over https, the TLS
    server name and certificate check still use the name. No redirect is followed, and
    COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS bounds the call when no ``client`` is given. Transport errors are ``httpx.HTTPError``s for the caller.
    """
    target = httpx.URL(url)
    pinned = target.copy_with(host=outbound_address(url))
    own = client or httpx.Client(timeout=settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        response = own.post(
            pinned,
            content=content,
            json=json,
            headers={**headers, "host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            # Also when the caller's client would follow them: a redirect could point anywhere.
            follow_redirects=False,
        )
    finally:
        if client is None:
            own.close()
    return response.status_code
