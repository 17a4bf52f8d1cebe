"""Button clicks and modal submissions from a reviewer group's Slack app, decided through the one decide service.

A click is trusted only once its signature verifies with one of the configured apps' signing
secrets (Slack's v0 scheme, ``slack_sdk``'s verifier: timestamps more than five minutes off are
refused). The Slack user is then mapped to an account (``slack_identity``) and everything else
(group visibility, separation of duties, quorum, the revision the message showed, the deadline)
is the decide service's: a click it refuses changes nothing and gets an ephemeral answer that
only the clicker sees. A double click or a Slack retry reaches the service twice; the second
is refused like any late decision.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import reverse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from approvals.models import ReviewerGroupNotifications, Surface
from approvals.selectors import action_request_for_reviewer, user_is_reviewer
from approvals.services import action_request_decide
from approvals.slack import (
    APPROVE_ACTION,
    CATEGORY_BLOCK,
    CATEGORY_INPUT,
    REASON_BLOCK,
    REASON_INPUT,
    REJECT_ACTION,
    REJECT_CALLBACK,
    parse_action_value,
    reject_modal,
    slack_client,
)
from core.errors import InvalidInput, NotFound, ServiceError

from .slack_identity import reviewer_for_slack_user, slack_link_token

logger = logging.getLogger(__name__)

NOT_YOURS = "You are not a reviewer of this request's group, or the request no longer exists: nothing was changed."


class MalformedPayload(Exception):
    """A signed payload that is not the shape Slack documents."""


def slack_app_verifying(body: bytes, headers: Mapping[str, str]) -> ReviewerGroupNotifications | None:
    """The reviewer group's Slack app whose signing secret signed this body, or None (forged, stale or unknown)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp.isdigit() or not signature.startswith("v0="):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for app in ReviewerGroupNotifications.objects.exclude(slack_channel="").select_related("group"):
        secret = app.slack_signing_secret
        if (
            isinstance(secret, str)
            and secret.strip()
            and SignatureVerifier(secret).is_valid(text, timestamp, signature)
        ):
            return app
    return None


def slack_interaction_handle(*, app: ReviewerGroupNotifications, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Act on one verified interaction; returns the JSON body to answer Slack with, or None for an empty 200."""
    try:
        if payload.get("type") == "block_actions":
            _on_button(app, payload)
            return None
        if payload.get("type") == "view_submission" and payload["view"].get("callback_id") == REJECT_CALLBACK:
            return _on_reject_submitted(app, payload)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise MalformedPayload(f"The interaction payload is not shaped as Slack documents it ({exc!r}).") from None
    return None


def _ephemeral(client: WebClient, *, channel: str, user: str, text: str) -> None:
    """Tell only the clicker; a failure to tell is logged, never a reason to answer Slack with an error."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except (SlackApiError, OSError) as exc:
        logger.warning("Slack ephemeral message to %s in %s not sent: %s", user, channel, exc)


def _link_text(team_id: str, slack_user_id: str) -> str:
    path = reverse("integrations:slack-link") + "?t=" + slack_link_token(team_id=team_id, slack_user_id=slack_user_id)
    return (
        "Your Slack account is not linked to a Countersign reviewer yet. Sign in and link it once "
        f"(the link works for 15 minutes): {settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}{path}"
    )


def _clicker(payload: dict[str, Any]) -> tuple[str, str]:
    """The (workspace, user) of whoever clicked or submitted."""
    user = payload["user"]
    team_id = user.get("team_id") or payload["team"]["id"]
    return str(team_id), str(user["id"])


def _on_button(app: ReviewerGroupNotifications, payload: dict[str, Any]) -> None:
    action = payload["actions"][0]
    action_id = action["action_id"]
    if action_id not in (APPROVE_ACTION, REJECT_ACTION):
        return  # the "Open the card" link button also reports a click
    client = slack_client(app.slack_bot_token)
    channel = str(payload["channel"]["id"])
    team_id, slack_user_id = _clicker(payload)
    request_id, revision = parse_action_value(action["value"])
    reviewer = reviewer_for_slack_user(team_id=team_id, slack_user_id=slack_user_id, client=client)
    if reviewer is None:
        _ephemeral(client, channel=channel, user=slack_user_id, text=_link_text(team_id, slack_user_id))
        return
    if not user_is_reviewer(reviewer):
        _ephemeral(client, channel=channel, user=slack_user_id, text=NOT_YOURS)
        return
    if action_id == REJECT_ACTION:
        try:
            request = action_request_for_reviewer(reviewer=reviewer, request_id=request_id)
        except NotFound:
            _ephemeral(client, channel=channel, user=slack_user_id, text=NOT_YOURS)
            return
        view = reject_modal(
            request=request, revision=revision, categories=settings.COUNTERSIGN_REJECT_REASONS, channel=channel
        )
        try:
            client.views_open(trigger_id=payload["trigger_id"], view=view)
        except (SlackApiError, OSError) as exc:
            logger.warning("Slack reject modal not opened: %s", exc)
            _ephemeral(client, channel=channel, user=slack_user_id, text="Slack did not open the form; try again.")
        return
    try:
        decision = action_request_decide(
            request_id=request_id, reviewer=reviewer, approve=True, seen_revision=revision, surface=Surface.SLACK
        )
    except NotFound:
        _ephemeral(client, channel=channel, user=slack_user_id, text=NOT_YOURS)
        return
    except ServiceError as exc:
        _ephemeral(client, channel=channel, user=slack_user_id, text=f"Not approved: {exc.message}")
        return
    _ephemeral(client, channel=channel, user=slack_user_id, text=_decided_text(decision, approve=True))


def _decided_text(decision: Any, *, approve: bool) -> str:
    request = decision.request
    if request.status == "pending":
        votes = request.votes.filter(approve=True).count()
        return f"Your approval is recorded: {votes} of {request.required_approvals} needed."
    return "You approved the request." if approve else "You rejected the request; the agent has your reason."


def _on_reject_submitted(app: ReviewerGroupNotifications, payload: dict[str, Any]) -> dict[str, Any] | None:
    view = payload["view"]
    meta = json.loads(view["private_metadata"])
    values = view["state"]["values"]
    selected = values[CATEGORY_BLOCK][CATEGORY_INPUT].get("selected_option") or {}
    category = str(selected.get("value") or "")
    reason = str(values[REASON_BLOCK][REASON_INPUT].get("value") or "")
    client = slack_client(app.slack_bot_token)
    team_id, slack_user_id = _clicker(payload)
    reviewer = reviewer_for_slack_user(team_id=team_id, slack_user_id=slack_user_id, client=client)
    if reviewer is None or not user_is_reviewer(reviewer):
        return {"response_action": "errors", "errors": {REASON_BLOCK: NOT_YOURS}}
    revision = meta.get("revision")
    try:
        decision = action_request_decide(
            request_id=str(meta["request"]),
            reviewer=reviewer,
            approve=False,
            reason=reason,
            reason_category=category,
            seen_revision=revision if isinstance(revision, int) and not isinstance(revision, bool) else None,
            surface=Surface.SLACK,
        )
    except NotFound:
        return {"response_action": "errors", "errors": {REASON_BLOCK: NOT_YOURS}}
    except InvalidInput as exc:
        block = CATEGORY_BLOCK if "category" in exc.code else REASON_BLOCK
        return {"response_action": "errors", "errors": {block: exc.message[:150]}}
    except ServiceError as exc:
        return {"response_action": "errors", "errors": {REASON_BLOCK: f"Not rejected: {exc.message}"[:150]}}
    channel = str(meta.get("channel") or "")
    if channel:
        _ephemeral(client, channel=channel, user=slack_user_id, text=_decided_text(decision, approve=False))
    return None
