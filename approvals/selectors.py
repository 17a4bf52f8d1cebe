from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from .errors import NotFound
from .models import ActionRequest, ActionTypeSchema, Agent, Status
from .representation import isoformat

QUEUE_EVIDENCE_SHOWN = 3
QUEUE_PAGE_SIZE = 200


def action_request_get_for_agent(*, agent: Agent, request_id: Any) -> ActionRequest:
    """An agent sees only its own requests; anyone else's is indistinguishable from a missing one."""
    try:
        return ActionRequest.objects.get(pk=request_id, agent=agent)
    except (ActionRequest.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No action request {request_id} belongs to this agent.") from None


def user_is_reviewer(user: AbstractBaseUser) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("approvals.review_actionrequest"))


def queue_pending_requests(
    *, limit: int = QUEUE_PAGE_SIZE, user: AbstractBaseUser | None = None
) -> QuerySet[ActionRequest]:
    """Pending requests a reviewer can still decide, soonest deadline first.

    With ``user``, a request routed to a reviewer group is listed only for members of that group.
    """
    queryset = ActionRequest.objects.filter(status=Status.PENDING, expires_at__gt=timezone.now())
    if user is not None:
        queryset = queryset.filter(Q(reviewer_group__isnull=True) | Q(reviewer_group__in=user.groups.all()))
    return queryset.select_related("agent", "reviewer_group").order_by("expires_at", "created_at")[:limit]


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


def queue_card(request: ActionRequest) -> dict[str, Any]:
    """The data one queue card shows. Rendered by our JavaScript with textContent only."""
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
        "evidence": evidence,
        "evidence_total": len(request.evidence or []),
        "confidence": request.confidence,
        "mode": request.mode,
        "risk": request.risk,
        "policy": request.policy_pattern or "default (no policy matched)",
        "policy_version": request.policy_version,
        "reason": request.verdict_reason,
        "required_approvals": request.required_approvals,
        "reviewer_group": request.reviewer_group.name if request.reviewer_group_id else None,
        "trace_id": str((request.context or {}).get("trace_id", "")),
        "created_at": isoformat(request.created_at),
        "expires_at": isoformat(request.expires_at),
    }


def queue_cards(*, limit: int = QUEUE_PAGE_SIZE, user: AbstractBaseUser | None = None) -> list[dict[str, Any]]:
    return [queue_card(r) for r in queue_pending_requests(limit=limit, user=user)]


def action_type_schemas(action_types: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The registered params schema of each of these action types that has one, in one query."""
    action_types = set(action_types)
    if not action_types:
        return {}
    rows = ActionTypeSchema.objects.filter(action_type__in=action_types).values_list("action_type", "params_schema")
    return dict(rows)
