"""The queue at scale: filters, facet counts and keyset pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core.cursors import cursor_decode, cursor_encode
from core.errors import InvalidInput
from core.timefmt import isoformat, parse_utc

from ..models import (
    ActionRequest,
    Agent,
    Status,
)
from ..visibility import pending_visible_to
from .requests import queue_cards_for

# --- the queue at scale: filters, facet counts, keyset pages -----------------------------------

RISK_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
QUEUE_SORTS = ("deadline", "risk")


@dataclass(frozen=True)
class QueueFilters:
    action_type: str = ""
    agent: str = ""
    risk: str = ""
    group: str = ""
    mine: bool = False
    q: str = ""
    sort: str = "deadline"

    @classmethod
    def from_query(cls, params: Any) -> QueueFilters:
        sort = params.get("sort") or "deadline"
        if sort not in QUEUE_SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(QUEUE_SORTS)}.", code="invalid_sort")
        risk = params.get("risk") or ""
        if risk and risk not in RISK_RANK:
            raise InvalidInput(f"risk must be one of {', '.join(RISK_RANK)}.", code="invalid_filter")
        return cls(
            action_type=(params.get("action_type") or "")[:200],
            agent=(params.get("agent") or "")[:200],
            risk=risk,
            group=(params.get("group") or "")[:150],
            mine=params.get("mine") in {"1", "true", "on"},
            q=(params.get("q") or "").strip()[:200],
            sort=sort,
        )


@dataclass
class QueuePage:
    cards: list[dict[str, Any]]
    total: int
    next_cursor: str | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def queue_visible_to(user: AbstractBaseUser) -> QuerySet[ActionRequest]:
    """Every request ``user`` could decide now: pending, before its deadline, routed to them or to everyone."""
    return pending_visible_to(ActionRequest.objects.all(), user).filter(
        status=Status.PENDING, expires_at__gt=timezone.now()
    )


def _queue_filtered(
    queryset: QuerySet[ActionRequest], filters: QueueFilters, user: AbstractBaseUser
) -> QuerySet[ActionRequest]:
    """Everything but the facets (action type, agent, risk, group): those are counted before they filter."""
    if filters.mine:
        # "Mine": routed to one of my groups, or a card I have open.
        queryset = queryset.filter(Q(reviewer_group__in=user.groups.all()) | Q(claim__user=user))
    if filters.q:
        queryset = queryset.filter(
            Q(summary__icontains=filters.q) | Q(action_type__icontains=filters.q) | Q(agent__name__icontains=filters.q)
        )
    return queryset


def _faceted(queryset: QuerySet[ActionRequest], filters: QueueFilters) -> QuerySet[ActionRequest]:
    if filters.action_type:
        queryset = queryset.filter(action_type=filters.action_type)
    if filters.agent:
        queryset = queryset.filter(agent__name=filters.agent)
    if filters.risk:
        queryset = queryset.filter(risk=filters.risk)
    if filters.group:
        queryset = queryset.filter(reviewer_group__name=filters.group)
    return queryset


def _decode_cursor(cursor: str, sort: str) -> tuple[int, datetime, uuid.UUID]:
    """(risk rank, deadline, id) of the last card handed out; the rank is 0 for the deadline sort."""
    try:
        values = cursor_decode(cursor)
        if values[0] != sort:
            raise ValueError("cursor from another sort order")
        rank, expires_at, last_id = int(values[1]), parse_utc(values[2]), uuid.UUID(values[3])
        return rank, expires_at, last_id
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise InvalidInput(
            "This cursor is not one the queue handed out (or belongs to another sort order): start again without it.",
            code="invalid_cursor",
        ) from exc


def _after(queryset: QuerySet[ActionRequest], expires_at: datetime, last_id: uuid.UUID) -> QuerySet[ActionRequest]:
    # The redundant ">=" bound lets the database start its index range at the cursor.
    return queryset.filter(expires_at__gte=expires_at).filter(
        Q(expires_at__gt=expires_at) | Q(expires_at=expires_at, id__gt=last_id)
    )


def _page_rows(
    queryset: QuerySet[ActionRequest], filters: QueueFilters, cursor: str, limit: int
) -> list[ActionRequest]:
    """Up to ``limit`` requests after the cursor, in the sort order, each query walking the deadline index."""
    queryset = queryset.select_related("agent", "reviewer_group").order_by("expires_at", "id")
    position = _decode_cursor(cursor, filters.sort) if cursor else None
    if filters.sort != "risk":
        if position:
            queryset = _after(queryset, position[1], position[2])
        return list(queryset[:limit])
    # By risk: one deadline-ordered query per risk level, from the cursor's level on, until the page is full.
    rows: list[ActionRequest] = []
    for risk, rank in RISK_RANK.items():
        if position and rank < position[0]:
            continue
        level = queryset.filter(risk=risk)
        if position and rank == position[0]:
            level = _after(level, position[1], position[2])
        rows += level[: limit - len(rows)]
        if len(rows) >= limit:
            break
    return rows


def queue_page(
    *, user: AbstractBaseUser, filters: QueueFilters, cursor: str = "", limit: int | None = None, counts: bool = True
) -> QueuePage:
    """One page of the queue and, unless ``counts`` is off, the counts per filter value.

    Pages are keyset-paginated on (deadline, id), or (risk, deadline, id): a page deep in
    the queue costs what the first costs, and a card arriving or leaving between two
    pages never makes another one skip or repeat. Counts cost one grouped query over
    the matching requests, so "load more" skips them.
    """
    limit = limit or settings.COUNTERSIGN_QUEUE_PAGE_SIZE
    matching = _queue_filtered(queue_visible_to(user), filters, user)
    requests = _page_rows(_faceted(matching, filters), filters, cursor, limit + 1)
    next_cursor = None
    if len(requests) > limit:
        requests = requests[:limit]
        last = requests[-1]
        rank = RISK_RANK.get(last.risk, len(RISK_RANK)) if filters.sort == "risk" else 0
        next_cursor = cursor_encode([filters.sort, rank, isoformat(last.expires_at), str(last.id)])
    facets = _facets(matching, filters) if counts else {}
    total = _total(facets, filters) if counts else -1
    return QueuePage(cards=queue_cards_for(requests), total=total, next_cursor=next_cursor, counts=facets)


FACET_VALUES_SHOWN = 100
FACETS = ("action_type", "agent", "risk", "group")


def _facets(matching: QuerySet[ActionRequest], filters: QueueFilters) -> dict[str, dict[str, int]]:
    """Counts per value of each facet, each counted with the other facets' filters applied.

    One grouped query gives the count of every (action type, agent, risk, group)
    combination; the four facets are summed from it, so a reviewer sees how many
    cards each choice would show.
    """
    rows = list(
        matching.order_by().values_list("action_type", "agent_id", "risk", "reviewer_group_id").annotate(n=Count("pk"))
    )
    # Names are looked up once per distinct id, not joined into every counted row.
    agent_names = dict(Agent.objects.filter(pk__in={row[1] for row in rows}).values_list("pk", "name"))
    group_names = dict(Group.objects.filter(pk__in={row[3] for row in rows if row[3]}).values_list("pk", "name"))
    chosen = {"action_type": filters.action_type, "agent": filters.agent, "risk": filters.risk, "group": filters.group}
    counts: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    for action_type, agent_id, risk, group_id, n in rows:
        values = {
            "action_type": action_type,
            "agent": agent_names.get(agent_id, ""),
            "risk": risk,
            "group": group_names.get(group_id, ""),
        }
        for facet in FACETS:
            if all(not chosen[other] or values[other] == chosen[other] for other in FACETS if other != facet):
                counts[facet][values[facet]] = counts[facet].get(values[facet], 0) + n
    return {
        facet: dict(sorted(values.items(), key=lambda item: (-item[1], item[0]))[:FACET_VALUES_SHOWN])
        for facet, values in counts.items()
    }


def _total(facets: dict[str, dict[str, int]], filters: QueueFilters) -> int:
    risk_counts = facets["risk"]
    return risk_counts.get(filters.risk, 0) if filters.risk else sum(risk_counts.values())
