"""The optional second factor (django-otp, TOTP): who must still do what, and the gate that enforces it.

The rule is written once, in ``second_factor_step``: a signed-in user with a confirmed device must have
verified a code in this session; with ``COUNTERSIGN_REQUIRE_2FA`` a staff user without a device must enrol.
Until then the session reaches nothing but the step's own page and logout: the middleware sends pages
there, makes the session count as anonymous for the session-authenticated API, the admin site asks the
same rule, and the queue's websocket refuses the connection (``session_second_factor_step``).

Agents (Bearer keys) and staff API tokens never use a session, so none of this applies to them.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

import segno
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

Step = Literal["verify", "enrol"]
VERIFY: Step = "verify"
ENROL: Step = "enrol"


def second_factor_step(user, *, verified: bool) -> Step | None:
    """What a signed-in ``user`` must still do before using anything: ``verify`` a code, ``enrol`` a device, or nothing.

    ``verified``: this session has passed a code of one of the user's confirmed devices.
    """
    if user is None or not user.is_authenticated:
        return None
    if verified:
        return None  # a code of a confirmed device of this user was passed: no need to look for devices
    if user_has_device(user, confirmed=True):
        return None if verified else VERIFY
    if settings.COUNTERSIGN_REQUIRE_2FA and user.is_staff:
        return ENROL
    return None


def request_second_factor_step(request: HttpRequest) -> Step | None:
    """``second_factor_step`` for a request that went through django-otp's OTPMiddleware."""
    user = request.user
    verified = bool(getattr(user, "is_verified", None) and user.is_verified())
    return second_factor_step(user, verified=verified)


def session_second_factor_step(user, session) -> Step | None:
    """``second_factor_step`` from a bare session (the websocket, where no Django middleware runs)."""
    device = None
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if persistent_id:
        device = Device.from_persistent_id(persistent_id)
    verified = device is not None and device.confirmed and device.user_id == getattr(user, "pk", None)
    return second_factor_step(user, verified=verified)


def step_url(step: Step) -> str:
    return reverse("two-factor-verify" if step == VERIFY else "two-factor")


def _exempt_paths(step: Step) -> set[str]:
    return {step_url(step), reverse("logout"), reverse("admin:logout")}


class SecondFactorMiddleware:
    """Holds a session that still owes its second factor at the step's page (after OTPMiddleware).

    Pages redirect there (keeping where the user was going); anything under /api/ sees the session as
    anonymous, so the session-authenticated staff API answers 401/403 in its own JSON shape while token
    and agent-key authentication are untouched.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self._is_async:
            return self.__acall__(request)
        held = self._hold(request)
        return held if held is not None else self.get_response(request)

    async def __acall__(self, request: HttpRequest):
        # Only a request carrying a session cookie can be a half-signed-in person: agents' long polls
        # (no cookie) pass without a thread hop or a database read.
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            held = await sync_to_async(self._hold, thread_sensitive=True)(request)
            if held is not None:
                return held
        return await self.get_response(request)

    def _hold(self, request: HttpRequest) -> HttpResponse | None:
        step = request_second_factor_step(request)
        if step is None or request.path in _exempt_paths(step):
            return None
        if request.path.startswith("/api/"):
            request.user = AnonymousUser()
            return None
        query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
        return HttpResponseRedirect(step_url(step) + (f"?{query}" if query else ""))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URI as an inline SVG QR code (no script, no style attribute: fits our CSP)."""
    return segno.make(device.config_url, error="m").svg_inline(
        scale=4, dark="#111", light="#fff", title="QR code for your authenticator app", svgclass="qr"
    )
