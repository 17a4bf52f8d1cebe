from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.cursors import MalformedCursor, cursor_decode, cursor_encode
from core.errors import InvalidInput, NotFound
from core.timefmt import isoformat, parse_utc

from .models import (
    ActionRequest,
    ActionTypeSchema,
    AfterReview,
    AfterReviewLabel,
    Agent,
    ContainmentCount,
    Pause,
    Status,
    Vote,
)
from .visibility import pending_visible_to, requests_visible_to

QUEUE_EVIDENCE_SHOWN = 3


def action_request_get_for_agent(*, agent: Agent, request_id: Any) -> ActionRequest:
    """An agent sees only its own requests; anyone else's is indistinguishable from a missing one."""
    try:
        request = ActionRequest.objects.get(pk=request_id, agent=agent)
    except (ActionRequest.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No action request {request_id} belongs to this agent.") from None
    request.agent = agent  # the agent in hand is the request's own: no second read for it
    return request


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


# --- pauses (the kill switch) ---------------------------------------------------------------

PAUSES_LISTED = 200


def pause_active_for(*, agent_id: Any, action_type: str) -> Pause | None:
    """The open pause that stops this agent submitting this action type: the agent's own first."""
    pauses = Pause.objects.filter(resumed_at__isnull=True).filter(Q(agent_id=agent_id) | Q(action_type=action_type))
    return min(pauses.select_related("agent"), key=lambda p: 0 if p.agent_id else 1, default=None)


def pauses_active() -> list[Pause]:
    """Every open pause, oldest first (at most one per agent and one per action type)."""
    return list(Pause.objects.filter(resumed_at__isnull=True).select_related("agent").order_by("paused_at", "id"))


def pauses_recent(*, limit: int = PAUSES_LISTED) -> list[Pause]:
    """Pauses open or lifted, newest first: who paused what, why, and who resumed it."""
    return list(Pause.objects.select_related("agent").order_by("-paused_at", "-id")[:limit])


def pause_as_json(pause: Pause) -> dict[str, Any]:
    """A pause as the staff API, the queue page and its live events show it."""
    return {
        "id": pause.pk,
        "kind": pause.kind,
        "target": pause.target,
        "reason": pause.reason,
        "paused_by": pause.paused_by_label,
        "paused_at": isoformat(pause.paused_at),
        "resumed_by": pause.resumed_by_label or None,
        "resumed_at": isoformat(pause.resumed_at),
    }


def agent_get_by_name(*, name: str) -> Agent:
    try:
        return Agent.objects.get(name=name)
    except Agent.DoesNotExist:
        raise NotFound(f"No agent named {name!r}.") from None


def agent_pending_count(*, agent: Agent) -> int:
    """Requests of ``agent`` waiting for a reviewer now (what its pending cap counts)."""
    return ActionRequest.objects.filter(agent=agent, status=Status.PENDING, expires_at__gt=timezone.now()).count()


def containment_counts(*, since: date | None = None) -> list[dict[str, Any]]:
    """Submissions refused or collapsed, summed by agent name, action type and kind (since ``since``, a day).

    ``[{"agent": name, "action_type": ..., "kind": ..., "count": n}]``, for /metrics and the dashboard.
    """
    rows = ContainmentCount.objects.all()
    if since is not None:
        rows = rows.filter(day__gte=since)
    totals = rows.values("agent__name", "action_type", "kind").annotate(n=Sum("count")).order_by()
    return [
        {"agent": row["agent__name"], "action_type": row["action_type"], "kind": row["kind"], "count": row["n"]}
        for row in totals
    ]


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
