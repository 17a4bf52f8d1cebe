"""Sign-in protection around django-axes: the page a locked-out person sees, and the log line for each lockout.

Axes counts the failures and refuses the attempt (settings: "Sign-in protection"); this module only says
so in our words. It covers every sign-in that goes through ``django.contrib.auth.authenticate`` with a
request: the reviewers' login page and the admin's.
"""

from __future__ import annotations

import logging
import math

from axes.signals import user_locked_out
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.timefmt import duration_human, isoformat

from .selectors import login_lockout_ends_at

security_log = logging.getLogger("countersign.security")


USERNAME_MAX = 150  # Django's username column: no real account has a longer name


def attempted_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username a sign-in attempt named, made storable (axes keeps it in a 255-character column).

    Anything longer than a username can be is cut (it matches no account either way) and NUL bytes,
    which PostgreSQL refuses in text, are dropped: a hostile username is a failed attempt, never a 500.
    """
    field = settings.AXES_USERNAME_FORM_FIELD
    raw = credentials.get(field) if credentials else getattr(request, "POST", {}).get(field)
    if raw is None:
        return None
    return str(raw).replace("\x00", "")[:USERNAME_MAX]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The lockout page (429, with Retry-After): what happened and when to try again.

    Axes' async middleware passes its arguments shifted, so the credentials are read from the request,
    where axes put them, whichever way we are called.
    """
    credentials = getattr(request, "axes_credentials", None) or (credentials if isinstance(credentials, dict) else {})
    username = attempted_username(request, credentials)
    ends_at = login_lockout_ends_at(username=username, ip_address=getattr(request, "axes_ip_address", None))
    now = timezone.now()
    if ends_at is None or ends_at <= now:
        ends_at = now + settings.AXES_COOLOFF_TIME
    wait_seconds = max(1, math.ceil((ends_at - now).total_seconds()))
    response = render(
        request,
        "registration/locked_out.html",
        {
            "ends_at": ends_at,
            "ends_at_iso": isoformat(ends_at),
            "wait": duration_human(wait_seconds),
            "failure_limit": settings.COUNTERSIGN_LOGIN_FAILURE_LIMIT,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(wait_seconds)
    return response


@receiver(user_locked_out)
def log_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    path = getattr(request, "path", "")
    security_log.warning("sign-in locked out: username=%r address=%s path=%s", username, ip_address or "unknown", path)
