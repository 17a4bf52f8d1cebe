"""Who may call the reviewer API: a reviewer, by personal access token or by their session."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from approvals.api.authentication import bearer_token
from approvals.models import REVIEWER_TOKEN_PREFIX
from approvals.selectors import user_is_reviewer

from ..models import PersonalAccessToken
from ..selectors import personal_access_token_for
from ..services import personal_access_token_touch


class PersonalAccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer cs_pat_…``: the token acts as its user. No header: the next class (the session)."""

    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        raw = bearer_token(header)
        if raw is None:
            raise exceptions.AuthenticationFailed(
                "Send the personal access token as 'Authorization: Bearer cs_pat_…'.", code="not_authenticated"
            )
        if not raw.startswith(REVIEWER_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "The reviewer API takes a reviewer's personal access token (cs_pat_…, made at "
                "/queue/settings/tokens/), not an agent API key.",
                code="wrong_token_kind",
            )
        token = personal_access_token_for(raw)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("This personal access token is unknown.", code="not_authenticated")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This personal access token was revoked; make a new one at /queue/settings/tokens/.",
                code="token_revoked",
            )
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                "This personal access token has expired; make a new one at /queue/settings/tokens/.",
                code="token_expired",
            )
        personal_access_token_touch(token=token, now=now)
        return (token.user, token)

    def authenticate_header(self, request):
        return 'Bearer realm="countersign"'


REVIEWER_AUTHENTICATION = [PersonalAccessTokenAuthentication, SessionAuthentication]


class IsReviewer(BasePermission):
    """A member of a reviewer group; a read-only token may only read."""

    message = "Only members of a reviewer group may use the reviewer API."

    def has_permission(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authentication required: send 'Authorization: Bearer cs_pat_…' (a personal access token "
                "from /queue/settings/tokens/) or call from a signed-in reviewer's session."
            )
        token = request.auth
        if isinstance(token, PersonalAccessToken) and token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(
                "This personal access token is read-only: it cannot decide or claim. Use a token made without "
                "'read only'.",
                code="token_read_only",
            )
        return user_is_reviewer(user)


class PersonalAccessTokenScheme(OpenApiAuthenticationExtension):
    """Documents PersonalAccessTokenAuthentication as the ``ReviewerToken`` bearer scheme."""

    target_class = "reviewers.api.authentication.PersonalAccessTokenAuthentication"
    name = "ReviewerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A reviewer's personal access token (cs_pat_…), made at /queue/settings/tokens/.",
        }
