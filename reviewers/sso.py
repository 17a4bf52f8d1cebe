"""Single sign-on through the organisation's OpenID Connect provider (``mozilla-django-oidc``).

Off unless COUNTERSIGN_OIDC_CLIENT_ID is set (README "Single sign-on"). At every sign-in the
reviewer groups named by the mapping follow the provider's groups claim exactly: a mapped group
the claim no longer lists is taken away, groups outside the mapping are left as they are, and
nobody becomes staff through SSO, nor signs into a staff account. An account is tied to the
provider's ``sub`` at its first sign-on (found by its verified email, or created) and found by
``sub`` from then on. With COUNTERSIGN_OIDC_ONLY, passwords stop working for
everyone but staff (their passwords are the way in when the provider is down).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from core.errors import PermissionRefused

from .models import SsoIdentity
from .services import reviewer_group_ensure, sso_identity_link

logger = logging.getLogger(__name__)

SUBJECT_MAX_CHARS = SsoIdentity._meta.get_field("subject").max_length


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def password_sign_in_allowed(user: AbstractBaseUser) -> bool:
    """In SSO-only mode only staff sign in with a password; otherwise everyone may."""
    return not (sso_enabled() and settings.COUNTERSIGN_OIDC_ONLY) or bool(user.is_staff)


def mapped_groups(claims: Mapping[str, Any], *, claim: str, mapping: Mapping[str, str]) -> set[str]:
    """The Countersign group names the provider's ``claim`` maps to (a list of names, or one name)."""
    values = claims.get(claim) or []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return set()
    return {mapping[value] for value in values if isinstance(value, str) and value in mapping}


@transaction.atomic
def reviewer_groups_sync(*, user: AbstractBaseUser, claims: Mapping[str, Any]) -> set[str]:
    """Make ``user``'s membership of the mapped groups exactly what the claim says; returns the groups held."""
    mapping: dict[str, str] = settings.COUNTERSIGN_OIDC_GROUP_MAP
    wanted = mapped_groups(claims, claim=settings.COUNTERSIGN_OIDC_GROUPS_CLAIM, mapping=mapping)
    managed = set(mapping.values())
    for name in wanted:
        user.groups.add(reviewer_group_ensure(name=name))
    user.groups.remove(*Group.objects.filter(name__in=managed - wanted))
    return wanted


class CountersignOIDCBackend(OIDCAuthenticationBackend):
    """Signs in with the provider's code flow; inert (no settings read, no sign-in) while SSO is off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if sso_enabled():
            super().__init__(*args, **kwargs)
        else:
            self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        if not sso_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        # The provider's stable id is what an account is tied to; an address the provider has not
        # verified must not take over the account that has it.
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= SUBJECT_MAX_CHARS:
            return False
        return bool(claims.get("email")) and claims.get("email_verified", True) is not False

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """The account tied to this ``sub``; before a person's first sign-on, the untied account with their email."""
        tied = self.UserModel.objects.filter(sso_identity__subject=claims["sub"])
        if tied.exists():
            return tied
        return self.UserModel.objects.filter(email__iexact=claims["email"], sso_identity__isnull=True)

    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        username = str(claims.get("preferred_username") or claims.get("sub") or "")[:150]
        if not username or self.UserModel.objects.filter(username=username).exists():
            username = self.get_username(claims)
        with transaction.atomic():
            user = self.UserModel.objects.create_user(username, email=claims["email"])
            sso_identity_link(user=user, subject=claims["sub"])
            reviewer_groups_sync(user=user, claims=claims)
        return user

    def update_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> AbstractBaseUser:
        if user.is_staff or user.is_superuser:
            # Staff sign in with their password and second factor: whoever controls the provider (or an
            # account there with a staff member's email) must not get the admin through it.
            logger.warning("single sign-on refused for staff account %s", user.pk)
            raise SuspiciousOperation("Single sign-on does not sign into staff accounts.")
        try:
            with transaction.atomic():
                sso_identity_link(user=user, subject=claims["sub"])
                reviewer_groups_sync(user=user, claims=claims)
        except PermissionRefused as exc:
            raise SuspiciousOperation(exc.message) from None
        return user


def _when_enabled(view: Any) -> Any:
    def guarded(request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        return view(request)

    return guarded


sso_start = _when_enabled(OIDCAuthenticationRequestView.as_view())
sso_callback = _when_enabled(OIDCAuthenticationCallbackView.as_view())


class SignInForm(AuthenticationForm):
    """The password form, refusing non-staff in SSO-only mode (after the password checked out)."""

    def confirm_login_allowed(self, user: AbstractBaseUser) -> None:
        super().confirm_login_allowed(user)
        if not password_sign_in_allowed(user):
            raise forms.ValidationError(
                "This site signs reviewers in through single sign-on: use “Sign in with SSO”.", code="sso_only"
            )
