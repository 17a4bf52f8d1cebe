"""Who a Slack user is here: a link the reviewer made once, or (if enabled) their verified Slack email."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.errors import InvalidInput, PermissionRefused

from .models import SlackIdentity

LINK_SALT = "countersign.integrations.slack-link"
LINK_MAX_AGE_SECONDS = 15 * 60


def slack_link_token(*, team_id: str, slack_user_id: str) -> str:
    """A signed, expiring token naming one Slack user; it is shown only to that user (an ephemeral message)."""
    return signing.dumps({"team": team_id, "user": slack_user_id}, salt=LINK_SALT, compress=True)


def slack_link_token_read(token: str) -> tuple[str, str]:
    """The (team, user) a link token names; ``InvalidInput`` when it is forged or older than 15 minutes."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise InvalidInput(
            "This link has expired: click a Countersign button in Slack again for a new one.", code="link_expired"
        ) from None
    except signing.BadSignature:
        raise InvalidInput("This link is not one Countersign made.", code="link_invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("team"), str) or not isinstance(data.get("user"), str):
        raise InvalidInput("This link is not one Countersign made.", code="link_invalid")
    return data["team"], data["user"]


def slack_identity_link(*, user: AbstractBaseUser, team_id: str, slack_user_id: str) -> SlackIdentity:
    """Link a Slack user to ``user``. A Slack user already linked to someone else stays theirs."""
    existing = SlackIdentity.objects.filter(team_id=team_id, slack_user_id=slack_user_id).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise PermissionRefused(
                "This Slack user is linked to another account: that account must unlink it first.",
                code="slack_user_linked_elsewhere",
            )
        return existing
    try:
        with transaction.atomic():
            return SlackIdentity.objects.create(team_id=team_id, slack_user_id=slack_user_id, user=user)
    except IntegrityError:
        # Linked by a concurrent click: whoever won, the rule above applies.
        return slack_identity_link(user=user, team_id=team_id, slack_user_id=slack_user_id)


def slack_identity_unlink(*, user: AbstractBaseUser, identity_id: Any) -> bool:
    return bool(SlackIdentity.objects.filter(pk=identity_id, user=user).delete()[0])


def slack_identities_of(*, user: AbstractBaseUser) -> list[SlackIdentity]:
    return list(SlackIdentity.objects.filter(user=user).order_by("-linked_at"))


def reviewer_for_slack_user(*, team_id: str, slack_user_id: str, client: WebClient) -> AbstractBaseUser | None:
    """The active account this Slack user decides as, or None (then they are asked to link first).

    With COUNTERSIGN_SLACK_MATCH_EMAIL, a Slack user without a link is matched by the email on
    their Slack profile (Slack confirms it; ``users:read.email`` scope) when exactly one active
    account has it.
    """
    identity = (
        SlackIdentity.objects.select_related("user")
        .filter(team_id=team_id, slack_user_id=slack_user_id, user__is_active=True)
        .first()
    )
    if identity is not None:
        return identity.user
    if not settings.COUNTERSIGN_SLACK_MATCH_EMAIL:
        return None
    try:
        profile = client.users_info(user=slack_user_id)["user"]["profile"]
    except (SlackApiError, OSError, KeyError, TypeError):
        return None
    email = profile.get("email") if isinstance(profile, dict) else None
    if not isinstance(email, str) or not email:
        return None
    matches = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    return matches[0] if len(matches) == 1 else None
