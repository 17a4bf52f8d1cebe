from __future__ import annotations

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from approvals.models import REVIEWER_TOKEN_PREFIX, Agent, AgentKey, hash_api_key


def agent_for_api_key(raw_key: str) -> Agent | None:
    key = (
        AgentKey.objects.select_related("agent")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True, agent__is_active=True)
        .first()
    )
    if key is None:
        return None
    # The key's own scope travels with the agent object to the submit service (see action_request_submit).
    key.agent.key_scopes = tuple(key.action_scopes or ())
    # Which key it was, for that key's own rate limit (approvals.services.containment).
    key.agent.key_id = key.pk
    now = timezone.now()
    # Touch last_used_at at most once a minute: no write on every request.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        AgentKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.agent


def bearer_token(header_value: bytes | str) -> str | None:
    if isinstance(header_value, bytes):
        header_value = header_value.decode("latin-1")
    parts = header_value.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


class AgentKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <agent API key>``."""

    def authenticate(self, request):
        header = get_authorization_header(request)
        if not header:
            return None
        token = bearer_token(header)
        if token is None:
            raise exceptions.AuthenticationFailed("Send the agent API key as 'Authorization: Bearer <key>'.")
        if token.startswith(REVIEWER_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "This is a reviewer's personal access token: it works on /api/v1/review/ only. "
                "This endpoint takes an agent API key.",
                code="wrong_token_kind",
            )
        agent = agent_for_api_key(token)
        if agent is None:
            raise exceptions.AuthenticationFailed("This API key is unknown, revoked, or its agent is disabled.")
        return (agent, token)

    def authenticate_header(self, request):
        return 'Bearer realm="countersign"'


class IsAgent(BasePermission):
    message = "Only agents (with an API key) may call this endpoint."

    def has_permission(self, request, view):
        return isinstance(request.user, Agent)
