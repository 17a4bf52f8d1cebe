"""Review afterwards: the queue of unattended requests waiting for a label, and the label counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.utils.dateparse import parse_datetime

from core.cursors import MalformedCursor, cursor_decode, cursor_encode
from core.errors import InvalidInput

from ..models import (
    ActionRequest,
    AfterReview,
    AfterReviewLabel,
)
from ..visibility import requests_visible_to

# --- review afterwards ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AfterReviewPage:
    requests: list[ActionRequest]
    next_cursor: str | None


def after_review_page(*, user: AbstractBaseUser, cursor: str | None = None, limit: int = 50) -> AfterReviewPage:
    """The requests waiting for ``user``'s label afterwards (their groups only), oldest first, one keyset page."""
    queryset = requests_visible_to(
        ActionRequest.objects.filter(after_review=AfterReview.DUE).select_related("agent"), user
    ).order_by("created_at", "id")
    if cursor:
        try:
            created_at, request_id = cursor_decode(cursor)
            after = parse_datetime(created_at)
            uuid.UUID(str(request_id))
        except (MalformedCursor, ValueError, TypeError):
            raise InvalidInput("'cursor' is not a cursor this list gave out.", code="invalid_cursor") from None
        if after is None:
            raise InvalidInput("'cursor' is not a cursor this list gave out.", code="invalid_cursor")
        queryset = queryset.filter(Q(created_at__gt=after) | Q(created_at=after, id__gt=request_id))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return AfterReviewPage(
        requests=rows,
        next_cursor=cursor_encode([last.created_at.isoformat(), str(last.pk)]) if more and last else None,
    )


def after_review_label_counts() -> list[dict[str, Any]]:
    """Labels by action type, agent, policy and label, and the requests left unlabelled, for /metrics."""
    labelled = (
        AfterReviewLabel.objects.values(
            "request__action_type", "request__agent__name", "request__policy_pattern", "label"
        )
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows = [
        {
            "action_type": row["request__action_type"],
            "agent": row["request__agent__name"],
            "policy": row["request__policy_pattern"],
            "label": row["label"],
            "count": row["n"],
        }
        for row in labelled
    ]
    unlabelled = (
        ActionRequest.objects.filter(after_review=AfterReview.UNLABELLED)
        .values("action_type", "agent__name", "policy_pattern")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows += [
        {
            "action_type": row["action_type"],
            "agent": row["agent__name"],
            "policy": row["policy_pattern"],
            "label": "unlabelled",
            "count": row["n"],
        }
        for row in unlabelled
    ]
    return rows
