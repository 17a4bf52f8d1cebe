"""Slack interactive approvals: the Block Kit messages, the reject modal and the Web API calls.

A reviewer group's ``ReviewerGroupNotifications`` row may name a Slack app (bot token, signing
secret, channel). A request that lands in the group's queue is then posted to the channel with
**Approve** and **Reject** buttons (``QueueNotification`` rows of channel ``slack_app``, sent by
the outbox like every other message); the posted message is remembered (``SlackMessage``) and
updated in place when the request is decided anywhere, expires, is cancelled or escalated, or
gets a quorum vote (``kind="update"`` rows). Clicks come back to
``integrations/slack/interactions`` (the ``integrations`` app), which decides through the one
decide service.

Agent-supplied text is untrusted: it goes into ``mrkdwn`` only through ``slack_escape`` (so it
can neither link nor mention) and is cut to Slack's block limits.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from slack_sdk import WebClient

from core.timefmt import isoformat

from .models import ActionRequest, Status

APPROVE_ACTION = "countersign_approve"
REJECT_ACTION = "countersign_reject"
REJECT_CALLBACK = "countersign_reject"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
CATEGORY_BLOCK, CATEGORY_INPUT = "reason_category", "reason_category_input"
FIELD_MAX = 300
SECTION_MAX = 2900
PARAMS_SHOWN = 6


def slack_escape(text: str) -> str:
    """Slack's rule for message text: only these three characters are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = FIELD_MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe(text: Any, limit: int = FIELD_MAX) -> str:
    return slack_escape(_cut(str(text), limit))


def slack_client(token: str) -> WebClient:
    """A Web API client for one bot token, at COUNTERSIGN_SLACK_API_URL (Slack's, or a stand-in in tests)."""
    return WebClient(token=token, base_url=settings.COUNTERSIGN_SLACK_API_URL, timeout=10)


def action_value(request: ActionRequest) -> str:
    """What a button carries: the request and the revision the message showed."""
    return f"{request.pk}:{request.revision}"


def parse_action_value(value: str) -> tuple[str, int | None]:
    request_id, _, revision = str(value).partition(":")
    return request_id, int(revision) if revision.isdigit() else None


def _deadline(expires_at: datetime | None) -> str:
    if expires_at is None:
        return "none"
    # Slack shows the date in each reader's own time zone; the ISO form is the fallback text.
    return f"<!date^{int(expires_at.timestamp())}^{{date_short_pretty}} {{time}}|{isoformat(expires_at)}>"


def card_link(request: ActionRequest) -> str:
    return f"{settings.COUNTERSIGN_PUBLIC_URL.rstrip('/')}/queue/requests/{request.pk}/"


def _summary_blocks(request: ActionRequest) -> list[dict[str, Any]]:
    fields = [
        f"*Action*\n{_safe(request.action_type)}",
        f"*Agent*\n{_safe(request.agent.name)}",
        f"*Risk*\n{_safe(request.risk)}",
        f"*Deadline*\n{_deadline(request.expires_at)}",
    ]
    if request.required_approvals > 1:
        fields.append(f"*Approvals needed*\n{request.required_approvals}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _safe(request.summary, SECTION_MAX)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": text} for text in fields]},
    ]
    params = request.params if isinstance(request.params, dict) else {}
    if params:
        shown = [
            f"`{_safe(key, 60)}`: {_safe(json.dumps(value, ensure_ascii=False, default=str), 200)}"
            for key, value in list(params.items())[:PARAMS_SHOWN]
        ]
        if len(params) > PARAMS_SHOWN:
            shown.append(f"…and {len(params) - PARAMS_SHOWN} more on the card")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Params*\n" + "\n".join(shown)}})
    evidence = [item for item in (request.evidence or []) if isinstance(item, dict)]
    if evidence:
        top = evidence[0]
        title = _safe(top.get("title") or top.get("url") or "(untitled)")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Top evidence: {title}"}]})
    return blocks


def pending_message(request: ActionRequest, *, kind: str = "new") -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and blocks of a request waiting in the queue, with its buttons."""
    headline = "A request is waiting for review" if kind != "reminder" else "Reminder: close to its deadline"
    text = f"{headline}: {_cut(request.action_type, 100)} from {_cut(request.agent.name, 100)}"
    votes = request.votes.filter(approve=True).count() if request.required_approvals > 1 else 0
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(headline, 150)}},
        *_summary_blocks(request),
    ]
    if votes:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{votes} of {request.required_approvals} approvals so far"}],
            }
        )
    blocks.append(
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": action_value(request),
                },
                {
                    "type": "button",
                    "action_id": REJECT_ACTION,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": action_value(request),
                },
                {"type": "button", "text": {"type": "plain_text", "text": "Open the card"}, "url": card_link(request)},
            ],
        }
    )
    return text, blocks


def outcome_line(request: ActionRequest) -> str:
    """What became of a request that left the group's queue, in one line (mrkdwn, escaped)."""
    # A missing one-to-one raises an AttributeError subclass: getattr's default covers "not decided".
    decision = getattr(request, "decision", None) if request.status != Status.PENDING else None
    if decision is not None:
        at = decision.decided_at.strftime("%H:%M UTC")
        who = _safe(decision.reviewer_username, 150)
        if decision.outcome == "approved":
            return f"Approved by {who} at {at}" + (" · edited" if decision.edited else "")
        reason = f": {_safe(decision.reason, 300)}" if decision.reason else ""
        return f"Rejected by {who} at {at}{reason}"
    if request.status in (Status.APPROVED, Status.EXECUTED):
        return "Approved"
    if request.status == Status.EXPIRED:
        return f"Expired at {request.expires_at.strftime('%H:%M UTC')}" if request.expires_at else "Expired"
    if request.status == Status.CANCELLED:
        return "Cancelled"
    if request.status == Status.REJECTED:
        return "Rejected"
    return f"Moved to {_safe(request.reviewer_group.name, 150)}" if request.reviewer_group_id else "Moved"


def final_message(request: ActionRequest) -> tuple[str, list[dict[str, Any]]]:
    """The message once the request left this queue: no buttons, the outcome on top."""
    line = outcome_line(request)
    text = f"{line}: {_cut(request.action_type, 100)} from {_cut(request.agent.name, 100)}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{line}*"}},
        *_summary_blocks(request),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{card_link(request)}|Open the card>"}]},
    ]
    return text, blocks


def reject_modal(
    *, request: ActionRequest, revision: int | None, categories: list[tuple[str, str]], channel: str
) -> dict[str, Any]:
    """The modal a Reject click opens: the reason category and the reason the agent will read."""
    options = [
        {"text": {"type": "plain_text", "text": _cut(label, 75)}, "value": slug} for slug, label in categories[:100]
    ]
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps({"request": str(request.pk), "revision": revision, "channel": channel}),
        "title": {"type": "plain_text", "text": "Reject the request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _safe(request.summary, SECTION_MAX)}},
            {
                "type": "input",
                "block_id": CATEGORY_BLOCK,
                "label": {"type": "plain_text", "text": "Reason category"},
                "element": {"type": "static_select", "action_id": CATEGORY_INPUT, "options": options},
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason (the agent reads it)"},
                "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True},
            },
        ],
    }
