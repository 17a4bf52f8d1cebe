"""A person's own sign-in settings: the second factor (enrol, confirm, remove) and the code after the password."""

from __future__ import annotations

import logging
from base64 import b32encode
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.clientaddr import client_address

from .services import totp_device_check, totp_device_confirm, totp_device_remove, totp_device_start
from .sso import SignInForm, sso_enabled
from .two_factor import ENROL, VERIFY, request_second_factor_step, totp_qr_svg

security_log = logging.getLogger("countersign.security")

CODE_MAX = 16


class SignInView(LoginView):
    """Django's sign-in page, with the SSO button when single sign-on is on, and SSO-only mode."""

    authentication_form = SignInForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(**kwargs) | {
            "sso_enabled": sso_enabled(),
            "sso_only": sso_enabled() and settings.COUNTERSIGN_OIDC_ONLY,
            "sso_failed": self.request.GET.get("sso") == "failed",
            "sso_refused": "form" in kwargs and kwargs["form"].has_error(NON_FIELD_ERRORS, "sso_only"),
        }


def _code(request: HttpRequest) -> str:
    return "".join(request.POST.get("code", "").split())[:CODE_MAX]


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


def _throttled_until(user) -> str | None:
    """When wrong codes stop being refused outright (django-otp's throttling), as HH:MM:SS UTC; None if not throttled."""
    for device in TOTPDevice.objects.filter(user=user):
        allowed, data = device.verify_is_allowed()
        if not allowed and data and data.get("locked_until"):
            return timezone.localtime(data["locked_until"]).strftime("%H:%M:%S UTC")
    return None


def _refused(request: HttpRequest, what: str, throttled_until: str | None) -> str:
    """Log a refused code and say why: wrong, or not even checked because of earlier wrong codes."""
    security_log.warning(
        "second factor refused (%s): username=%r address=%s",
        what,
        request.user.get_username(),
        client_address(request) or "unknown",
    )
    if throttled_until:
        return f"Too many wrong codes. Wait until {throttled_until}, then enter the current code from your app."
    return "That code is not valid. Enter the current 6-digit code from your authenticator app."


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The code after the password, for a user with a confirmed device."""
    step = request_second_factor_step(request)
    if step != VERIFY:
        return HttpResponseRedirect(_next_url(request) if step is None else reverse("two-factor"))
    error = ""
    if request.method == "POST":
        throttled_until = _throttled_until(request.user)
        device = totp_device_check(user=request.user, token=_code(request))
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request))
        error = _refused(request, "sign-in", throttled_until)
    status = 200 if not error else 400
    return render(
        request, "registration/two_factor_verify.html", {"error": error, "next": _next_url(request)}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    """Enrol (start, then confirm with a first code), or remove with a current code."""
    user = request.user
    step = request_second_factor_step(request)
    if step == VERIFY:
        return HttpResponseRedirect(reverse("two-factor-verify") + "?" + urlencode({"next": reverse("two-factor")}))
    error = notice = ""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    throttled_until = _throttled_until(user) if action in {"confirm", "remove"} else None
    if action == "start":
        totp_device_start(user=user)
    elif action == "confirm":
        device = totp_device_confirm(user=user, token=_code(request))
        if device is not None:
            otp_login(request, device)
            security_log.info("second factor enrolled: username=%r", user.get_username())
            return HttpResponseRedirect(reverse("two-factor") + "?done=on")
        error = _refused(request, "enrolment", throttled_until)
    elif action == "remove":
        if totp_device_remove(user=user, token=_code(request)):
            security_log.warning("second factor removed: username=%r", user.get_username())
            return HttpResponseRedirect(reverse("two-factor") + "?done=off")
        error = _refused(request, "removal", throttled_until)
    if request.GET.get("done") == "on":
        notice = "Two-factor sign-in is on: from now on you will be asked for a code after your password."
    elif request.GET.get("done") == "off":
        notice = "Two-factor sign-in is off."

    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    pending = None if confirmed else TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    context = {
        "confirmed": confirmed,
        "pending": pending is not None,
        "required": step == ENROL,
        "error": error,
        "notice": notice,
    }
    if pending is not None:
        secret = b32encode(pending.bin_key).decode()
        context.update(
            {
                "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
                "otpauth_uri": pending.config_url,
                "qr_svg": totp_qr_svg(pending),
            }
        )
    return render(request, "registration/two_factor.html", context, status=400 if error else 200)
