"""Agents and their keys: created by admins, keys shown once and stored hashed."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput
from core.netguard import validate_outbound_url

from ..models import (
    API_KEY_PREFIX,
    REVIEWER_TOKEN_PREFIX,
    Agent,
    AgentKey,
    generate_webhook_secret,
    hash_api_key,
)


def agent_key_issue(*, agent: Agent) -> str:
    """Create a new API key for an agent and return it. Only its hash is stored: show it once."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    while raw_key.startswith(REVIEWER_TOKEN_PREFIX):
        # Vanishingly rare (one in 64**4), but the two kinds of credential must never look alike.
        raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    AgentKey.objects.create(agent=agent, prefix=raw_key[:10], key_hash=hash_api_key(raw_key))
    return raw_key


@transaction.atomic
def agent_create(
    *, name: str, owner: AbstractBaseUser | None = None, default_callback_url: str = ""
) -> tuple[Agent, str]:
    if Agent.objects.filter(name=name).exists():
        raise InvalidInput(f"An agent named {name!r} already exists.", code="agent_exists")
    if default_callback_url:
        validate_outbound_url(default_callback_url)
    agent = Agent.objects.create(name=name, owner=owner, default_callback_url=default_callback_url)
    return agent, agent_key_issue(agent=agent)


def agent_key_revoke(*, agent: Agent, prefix: str) -> int:
    return agent.keys.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now())


def agent_webhook_secret_rotate(*, agent: Agent) -> str:
    agent.webhook_secret = generate_webhook_secret()
    agent.save(update_fields=["webhook_secret"])
    return agent.webhook_secret


LIMIT_FIELDS = ("rate_limit_per_minute", "key_rate_limit_per_minute", "max_pending")


def agent_limits_set(
    *,
    agent: Agent,
    rate_limit_per_minute: int | None,
    key_rate_limit_per_minute: int | None,
    max_pending: int | None,
) -> Agent:
    """Replace the agent's containment overrides (None: the server's default applies; 0: no limit).

    Takes effect on the agent's next submission, in every process: the limits are read from the
    agent row each time it authenticates.
    """
    values = {
        "rate_limit_per_minute": rate_limit_per_minute,
        "key_rate_limit_per_minute": key_rate_limit_per_minute,
        "max_pending": max_pending,
    }
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInput(f"{name} must be a whole number >= 0, or null for the default.", code="invalid_limit")
        setattr(agent, name, value)
    agent.save(update_fields=list(LIMIT_FIELDS))
    return agent
