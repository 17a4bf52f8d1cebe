"""Who is on the other end of a request: the client address, as far as we may trust the headers.

X-Forwarded-For is whatever the client wrote, plus what each proxy appended on the right. Only the
entries our own proxies appended can be believed, so the address is read ``COUNTERSIGN_TRUSTED_PROXY_COUNT``
places from the right, and with no trusted proxy (the default) the header is ignored altogether.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address; REMOTE_ADDR unless trusted proxies are configured. None if unknown.

    Never returns something that is not an IP address (it is stored in an address column).
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR"))
    proxies = settings.COUNTERSIGN_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        # Fewer hops than proxies: the request did not come through all of them; trust only the socket.
        return remote
    return _valid_ip(forwarded[-proxies]) or remote
