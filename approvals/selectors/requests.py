"""One request as its reader sees it: the agent's own, a reviewer's card and its track record, schemas."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone

from core.errors import NotFound
from core.timefmt import isoformat

from ..models import (
    ActionRequest,
    ActionTypeSchema,
    Agent,
    Status,
    Vote,
)
from ..visibility import requests_visible_to

QUEUE_EVIDENCE_SHOWN = 3


def action_request_get_for_agent(*, agent: Agent, request_id: Any) -> ActionRequest:
    """An agent sees only its own requests; anyone else's is indistinguishable from a missing one."""
    try:
        request = ActionRequest.objects.get(pk=request_id, agent=agent)
    except (ActionRequest.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No action request {request_id} belongs to this agent.") from None
    request.agent = agent  # the agent in hand is the request's own: no second read for it
    return request


SETTLED_READ_CHUNK = 500  # ids per statement: well under SQLite's (and old SQLite's 999) bound parameters


def action_requests_settled_among(request_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these requests are no longer pending: one statement per 500 ids, however many are asked."""
    ids = list(request_ids)
    settled: set[uuid.UUID] = set()
    for start in range(0, len(ids), SETTLED_READ_CHUNK):
        chunk = ids[start : start + SETTLED_READ_CHUNK]
        settled.update(
            ActionRequest.objects.filter(pk__in=chunk).exclude(status=Status.PENDING).values_list("pk", flat=True)
        )
    return settled


def user_is_reviewer(user: AbstractBaseUser) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("approvals.review_actionrequest"))


def reject_reason_categories() -> list[dict[str, str]]:
    """The configured rejection categories, in order: ``[{"slug": ..., "label": ...}]`` (the queue embeds it)."""
    return [{"slug": slug, "label": label} for slug, label in settings.COUNTERSIGN_REJECT_REASONS]


def safe_link(url: Any) -> str | None:
    """Only http(s) evidence URLs become links; javascript:, data: and friends stay text."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in {"http", "https"} else None


def queue_card(
    request: ActionRequest,
    *,
    history: dict[tuple[int, str], dict[str, int]] | None = None,
    schemas: dict[str, dict[str, Any]] | None = None,
    approvals: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The data one queue card shows. Rendered by our JavaScript with textContent only.

    ``history``, ``schemas`` and ``approvals`` (votes so far on quorum requests) come from
    one bulk query each when a page of cards is built (see ``queue_page``); a single card
    (a live arrival or update) fetches its own.
    """
    if history is None:
        history = agent_action_history([(request.agent_id, request.action_type)])
    if schemas is None:
        schemas = action_type_schemas([request.action_type])
    if approvals is None:
        approvals = quorum_approvals([request])
    schema = schemas.get(request.action_type)
    evidence = []
    for item in (request.evidence or [])[:QUEUE_EVIDENCE_SHOWN]:
        item = item if isinstance(item, dict) else {}
        evidence.append(
            {
                "title": str(item.get("title", "")),
                "url": str(item.get("url", "")),
                "href": safe_link(item.get("url")),
                "excerpt": str(item.get("excerpt", "")),
            }
        )
    return {
        "id": str(request.id),
        "revision": request.revision,
        "action_type": request.action_type,
        "agent": request.agent.name,
        "summary": request.summary,
        "params": request.params,
        "key_params": key_param_names(request.params, schema),
        "params_schema": schema,
        "history": history.get((request.agent_id, request.action_type), dict.fromkeys(HISTORY_OUTCOMES, 0)),
        "evidence": evidence,
        "evidence_total": len(request.evidence or []),
        "confidence": request.confidence,
        "mode": request.mode,
        "risk": request.risk,
        "policy": request.policy_pattern or "default (no policy matched)",
        "policy_version": request.policy_version,
        "reason": request.verdict_reason,
        "required_approvals": request.required_approvals,
        "approved_by": approvals.get(str(request.id), []),
        "reviewer_group": request.reviewer_group.name if request.reviewer_group_id else None,
        "trace_id": str((request.context or {}).get("trace_id", "")),
        "created_at": isoformat(request.created_at),
        "expires_at": isoformat(request.expires_at),
    }


def queue_cards_for(requests: list[ActionRequest]) -> list[dict[str, Any]]:
    """Cards for a page of requests in a constant number of queries, however many there are."""
    history = agent_action_history({(r.agent_id, r.action_type) for r in requests})
    schemas = action_type_schemas({r.action_type for r in requests})
    approvals = quorum_approvals(requests)
    return [queue_card(r, history=history, schemas=schemas, approvals=approvals) for r in requests]


def quorum_approvals(requests: Iterable[ActionRequest]) -> dict[str, list[str]]:
    """Who has approved each quorum request so far (one query, none when no request needs a quorum)."""
    ids = [r.pk for r in requests if r.required_approvals > 1]
    approvals: dict[str, list[str]] = {}
    if ids:
        for request_id, username in Vote.objects.filter(request_id__in=ids, approve=True).values_list(
            "request_id", "reviewer_username"
        ):
            approvals.setdefault(str(request_id), []).append(username)
    return approvals


# --- the agent's track record on a card ------------------------------------------------------

HISTORY_DAYS = 30
HISTORY_OUTCOMES = ("approved", "edited", "rejected")


def agent_action_history(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], dict[str, int]]:
    """How reviewers decided each (agent, action type) in the last 30 days, in one query.

    Walks the (agent, action type, decided_at) index, so the pending requests that share
    those keys cost nothing; "approved" counts unedited approvals, "edited" the rest.
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    rows = (
        ActionRequest.objects.filter(
            agent_id__in={agent_id for agent_id, _ in pairs},
            action_type__in={action_type for _, action_type in pairs},
            decided_at__gte=since,
            decision__isnull=False,
        )
        .values_list("agent_id", "action_type", "decision__outcome", "decision__edited")
        .annotate(n=Count("pk"))
        .order_by()
    )
    history: dict[tuple[int, str], dict[str, int]] = {pair: dict.fromkeys(HISTORY_OUTCOMES, 0) for pair in pairs}
    for agent_id, action_type, outcome, edited, n in rows:
        counts = history.get((agent_id, action_type))
        if counts is not None:
            counts["rejected" if outcome == "rejected" else "edited" if edited else "approved"] += n
    return history


# Parameters a reviewer most needs to check first when the agent registered no schema.
TARGET_PARAM_NAMES = (
    "to",
    "recipient",
    "recipients",
    "email",
    "cc",
    "bcc",
    "account",
    "account_id",
    "customer",
    "customer_id",
    "user",
    "user_id",
    "amount",
    "currency",
    "url",
    "path",
    "repository",
    "branch",
    "target",
    "table",
    "query",
)
KEY_PARAMS_SHOWN = 4


def key_param_names(params: Any, schema: dict[str, Any] | None) -> list[str]:
    """The parameters a card shows first: the schema's required ones, else the usual targets."""
    if not isinstance(params, dict):
        return []
    if schema:
        required = [name for name in schema.get("required", []) if name in params]
        if required:
            return required[:KEY_PARAMS_SHOWN]
    lowered = {key.lower(): key for key in params}
    found = [lowered[name] for name in TARGET_PARAM_NAMES if name in lowered]
    if not found:
        found = [key for key, value in params.items() if not isinstance(value, dict | list)]
    return found[:KEY_PARAMS_SHOWN]


def action_type_schema_get(*, action_type: str) -> ActionTypeSchema:
    try:
        return ActionTypeSchema.objects.select_related("registered_by").get(action_type=action_type)
    except ActionTypeSchema.DoesNotExist:
        raise NotFound(f"No schema is registered for {action_type!r}.") from None


def action_type_schemas(action_types: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The registered params schema of each of these action types that has one, in one query."""
    action_types = set(action_types)
    if not action_types:
        return {}
    rows = ActionTypeSchema.objects.filter(action_type__in=action_types).values_list("action_type", "params_schema")
    return dict(rows)


def action_request_for_reviewer(
    *, reviewer: AbstractBaseUser, request_id: Any, related: tuple[str, ...] = ()
) -> ActionRequest:
    """The request, if ``reviewer`` may see it; otherwise ``NotFound`` (routed to another group, it does not exist)."""
    try:
        request = (
            requests_visible_to(ActionRequest.objects.select_related("agent", *related), reviewer)
            .filter(pk=request_id)
            .first()
        )
    except (ValueError, TypeError, ValidationError):
        request = None
    if request is None:
        raise NotFound("No such request in your groups.")
    return request
