from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from approvals.models import REVIEWER_TOKEN_PREFIX, Agent
from approvals.selectors import agent_for_api_key, agent_for_api_key_remembered


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
        agent = self.agent_for(token)
        if agent is None:
            raise exceptions.AuthenticationFailed("This API key is unknown, revoked, or its agent is disabled.")
        return (agent, token)

    def authenticate_header(self, request):
        return 'Bearer realm="countersign"'

    def agent_for(self, token: str) -> Agent | None:
        return agent_for_api_key(token)


class RememberedAgentKeyAuthentication(AgentKeyAuthentication):
    """As ``AgentKeyAuthentication``, but the agent may come unconfirmed from this process's memory
    (``approvals.selectors.agent_keys``): only for a view whose service confirms it before acting."""

    def agent_for(self, token: str) -> Agent | None:
        return agent_for_api_key_remembered(token)


class IsAgent(BasePermission):
    message = "Only agents (with an API key) may call this endpoint."

    def has_permission(self, request, view):
        return isinstance(request.user, Agent)
