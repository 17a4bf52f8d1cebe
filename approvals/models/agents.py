"""Agents and their API keys."""

import base64
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models

from core.fields import EncryptedTextField

API_KEY_PREFIX = "cs_"
# Reviewers' personal access tokens (reviewers.models.PersonalAccessToken) start with this: the
# agent API refuses them by their prefix, and no agent key is ever issued with it.
REVIEWER_TOKEN_PREFIX = "cs_pat_"  # noqa: S105 (a prefix, not a secret)
# An action type as agents submit it (the API, the staff API and the pause service check names with it).
ACTION_TYPE_REGEX = r"^[a-z0-9][a-z0-9_.:-]{0,199}$"


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Agent(models.Model):
    """A program that asks before it acts. Authenticates with one or more API keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    is_active = models.BooleanField(default=True)
    default_callback_url = models.URLField(blank=True, max_length=2000)
    tags = models.JSONField(
        default=list, blank=True, help_text='Labels policy conditions can test: "finance" in agent.tags.'
    )
    action_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Action patterns this agent may request (globs allowed); anything else is blocked. Empty: no limit.",
    )
    # Encrypted at rest (core.fields): a database dump alone signs nothing.
    webhook_secret = EncryptedTextField(default=generate_webhook_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Containment (approvals.services.containment): empty means the COUNTERSIGN_ setting applies.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Submissions per minute for this agent, all keys together. Empty: the server default; 0: no limit.",
    )
    key_rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Submissions per minute for each of its API keys (never looser than the agent's). Empty: the default.",
    )
    max_pending = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests this agent may have waiting for a reviewer at once. Empty: the server default; 0: no cap.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    # DRF treats request.user as the authenticated principal.
    is_authenticated = True
    is_anonymous = False


class AgentKey(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, help_text="The first characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    action_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Action patterns this key may request, within the agent's own scope. Empty: the agent's scope.",
    )

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.agent.name})"
