"""Read paths of the reviewer UI."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, Index, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_date

from approvals.audit_chain import ChainCheck, audit_chain_check, audit_chain_verify_request
from approvals.models import ActionRequest, AuditEvent, Decision, Status, Vote, WebhookDelivery, hash_api_key
from approvals.selectors import QueueFilters, pause_as_json, pauses_active, queue_card, queue_page, safe_link
from approvals.visibility import requests_visible_to
from core.cursors import cursor_decode, cursor_encode
from core.errors import InvalidInput, NotFound
from core.jsondiff import json_diff
from core.timefmt import duration_human, isoformat, parse_utc

from .models import Claim, PersonalAccessToken


def claims_active(request_ids: Iterable[Any]) -> dict[str, dict[str, str]]:
    """Who is reviewing which of these requests right now: ``{id: {"by", "expires_at"}}``, one query."""
    claims = Claim.objects.filter(request_id__in=list(request_ids), expires_at__gt=timezone.now()).select_related(
        "user"
    )
    return {
        str(claim.request_id): {"by": claim.user.get_username(), "expires_at": isoformat(claim.expires_at)}
        for claim in claims
    }


# --- the queue: one view of it, for the page, cards.json and the reviewer API ---------------


def queue_state(*, user: AbstractBaseUser, params: Any) -> dict[str, Any]:
    """Everything one view of the queue shows, from the query string (the one parser of its filters).

    A bad filter, sort or cursor raises ``InvalidInput``.
    """
    filters = QueueFilters.from_query(params)
    page = queue_page(
        user=user,
        filters=filters,
        cursor=params.get("cursor") or "",
        counts=params.get("counts") != "0",
    )
    return {
        "cards": page.cards,
        "total": page.total,
        "next_cursor": page.next_cursor,
        "counts": page.counts,
        "claims": claims_active(card["id"] for card in page.cards),
        "filters": asdict(filters),
        # The kill switch's banners: pauses in force (a reload after a reconnect redraws them too).
        "pauses": [pause_as_json(pause) for pause in pauses_active()],
    }


def review_request_get(*, user: AbstractBaseUser, request_id: Any) -> dict[str, Any]:
    """One request as ``user`` sees it: its queue card (with the revision to decide on), its status and claim.

    Routed to a group ``user`` is not in, it does not exist for them (``NotFound``), as in the queue.
    """
    try:
        request = (
            requests_visible_to(ActionRequest.objects.select_related("agent", "reviewer_group"), user)
            .filter(pk=request_id)
            .first()
        )
    except (ValueError, TypeError, ValidationError):
        request = None
    if request is None:
        raise NotFound(f"No action request {request_id}.")
    now = timezone.now()
    status = effective_status(request, now=now)
    if status == Status.PENDING and request.expires_at <= now:
        status = Status.EXPIRED
    return queue_card(request) | {
        "status": status,
        "claim": claims_active([request.pk]).get(str(request.pk)),
    }


# --- history: the decided view and one request's record ------------------------------------

HISTORY_PAGE_SIZE = 50
# What a human saw through to the end, shown by default.
FINISHED_STATUSES = (
    Status.APPROVED,
    Status.REJECTED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.EXECUTED,
    Status.LAPSED,
)
# Settled by the policy table alone, at submission: shown only when asked for.
POLICY_STATUSES = (Status.ALLOWED, Status.BLOCKED)
HISTORY_STATUSES = FINISHED_STATUSES + POLICY_STATUSES
# The index the history's order needs to stay fast at any size (ActionRequest has none on these
# columns): without it every page sorts the whole table. Proposed for ActionRequest.Meta.indexes;
# the 100,000-row test builds it to measure it.
HISTORY_ORDER_INDEX = Index(Coalesce("decided_at", "created_at").desc(), F("id").desc(), name="requests_by_finish_time")
_ID_PREFIX_RE = re.compile(r"^[0-9a-f]{4,8}$")


def reason_category_of(item: Decision | Vote | None) -> str:
    """The rejection category's label (settings.COUNTERSIGN_REJECT_REASONS), or its slug if no longer listed."""
    if item is None or not item.reason_category:
        return ""
    return dict(settings.COUNTERSIGN_REJECT_REASONS).get(item.reason_category, item.reason_category)


# --- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    q: str = ""
    status: str = ""
    include_policy: bool = False
    action_type: str = ""
    agent: str = ""
    reviewer: str = ""
    mine: bool = False
    since: date | None = None
    until: date | None = None


def _date_param(params: Any, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        parsed = parse_date(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidInput(f"'{name}' must be a date such as 2026-01-31.", code="invalid_date")
    return parsed


def history_filters_from(params: Any) -> HistoryFilters:
    """Read the history page's query string; an unknown status or a malformed date is refused."""
    status = (params.get("status") or "").strip()
    if status and status not in HISTORY_STATUSES:
        raise InvalidInput(f"'status' must be one of {', '.join(HISTORY_STATUSES)}.", code="invalid_status")
    return HistoryFilters(
        q=(params.get("q") or "").strip()[:200],
        status=status,
        include_policy=params.get("policy") in {"1", "on", "true"},
        action_type=(params.get("action_type") or "").strip(),
        agent=(params.get("agent") or "").strip(),
        reviewer=(params.get("reviewer") or "").strip(),
        mine=params.get("mine") in {"1", "on", "true"},
        since=_date_param(params, "since"),
        until=_date_param(params, "until"),
    )


def _search(q: str) -> Q:
    votes = Vote.objects.filter(request=OuterRef("pk")).filter(
        Q(reviewer_username__icontains=q) | Q(reason__icontains=q) | Q(reason_category__icontains=q)
    )
    match = (
        Q(summary__icontains=q)
        | Q(action_type__icontains=q)
        | Q(agent__name__icontains=q)
        | Q(decision__reviewer_username__icontains=q)
        | Q(decision__reason__icontains=q)
        | Q(decision__reason_category__icontains=q)
        | Q(Exists(votes))
    )
    try:
        match |= Q(pk=uuid.UUID(q))
    except ValueError:
        # The short id the page shows: the first characters of the UUID, the same on every backend.
        if _ID_PREFIX_RE.match(q.lower()):
            match |= Q(id__startswith=q.lower())
    return match


def history_requests(*, user: AbstractBaseUser, filters: HistoryFilters, now: datetime) -> QuerySet[ActionRequest]:
    """Finished requests ``user`` may see, newest first by when they finished.

    ``finished_at`` is when the request left pending (``decided_at``), or its submission time
    for one the policy settled at once.
    """
    qs = requests_visible_to(ActionRequest.objects.all(), user).annotate(
        finished_at=Coalesce("decided_at", "created_at")
    )
    if filters.status == Status.LAPSED:
        # An approval past its deadline is lapsed whether or not the sweep has marked it yet.
        qs = qs.filter(Q(status=Status.LAPSED) | Q(status=Status.APPROVED, approval_expires_at__lte=now))
    elif filters.status == Status.APPROVED:
        qs = qs.filter(status=Status.APPROVED, approval_expires_at__gt=now)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    elif filters.include_policy:
        qs = qs.filter(status__in=HISTORY_STATUSES)
    else:
        qs = qs.filter(status__in=FINISHED_STATUSES)
    if not filters.include_policy and filters.status not in POLICY_STATUSES:
        # An allowed request the agent then ran is "executed" but never reached a human.
        qs = qs.filter(mode="approve")
    if filters.action_type:
        qs = qs.filter(action_type=filters.action_type)
    if filters.agent:
        qs = qs.filter(agent__name=filters.agent)
    if filters.reviewer:
        voted = Vote.objects.filter(request=OuterRef("pk"), reviewer_username__iexact=filters.reviewer)
        qs = qs.filter(Q(decision__reviewer_username__iexact=filters.reviewer) | Q(Exists(voted)))
    if filters.mine:
        voted = Vote.objects.filter(request=OuterRef("pk"), reviewer=user)
        qs = qs.filter(Q(decision__reviewer=user) | Q(Exists(voted)))
    tz = timezone.get_current_timezone()
    if filters.since:
        qs = qs.filter(finished_at__gte=datetime.combine(filters.since, time.min, tzinfo=tz))
    if filters.until:
        qs = qs.filter(finished_at__lt=datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=tz))
    if filters.q:
        qs = qs.filter(_search(filters.q))
    return (
        qs.select_related("agent", "decision", "reviewer_group")
        .prefetch_related(Prefetch("votes", queryset=Vote.objects.order_by("created_at", "id")))
        .order_by("-finished_at", "-id")
    )


# --- the cursor ------------------------------------------------------------------------------
# A cursor is the (finished_at, id) of the last row a page showed; the next page is everything
# strictly older. A request finishing while someone pages gets finished_at = now, so it sorts
# before every row already seen: pages neither skip nor repeat (an OFFSET would shift by one).


def history_cursor_encode(request: ActionRequest) -> str:
    return cursor_encode([request.finished_at.isoformat(), str(request.pk)])


def history_cursor_decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, pk = cursor_decode(cursor)
        return parse_utc(stamp), uuid.UUID(pk)
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput("This page link is not one the history issued; start again from the first page.") from None


def history_after(qs: QuerySet[ActionRequest], cursor: str | None) -> QuerySet[ActionRequest]:
    """The rows of ``history_requests`` strictly older than ``cursor``."""
    if not cursor:
        return qs
    when, pk = history_cursor_decode(cursor)
    # The plain upper bound lets the database seek into an index on (finished_at, id)
    # rather than walk it from the newest row; the OR then settles ties at the edge.
    return qs.filter(finished_at__lte=when).filter(Q(finished_at__lt=when) | Q(id__lt=pk))


@dataclass(frozen=True)
class HistoryPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def history_page(
    *, user: AbstractBaseUser, filters: HistoryFilters, cursor: str | None = None, size: int = HISTORY_PAGE_SIZE
) -> HistoryPage:
    """One page of history: ``size`` rows after ``cursor``, in two queries whatever the table holds."""
    now = timezone.now()
    qs = history_after(history_requests(user=user, filters=filters, now=now), cursor)
    # One row more than shown says whether there is a next page, without a COUNT.
    found = list(qs[: size + 1])
    shown = found[:size]
    next_cursor = history_cursor_encode(shown[-1]) if len(found) > size else None
    return HistoryPage(rows=[history_row(r, now=now) for r in shown], next_cursor=next_cursor)


def _decision_of(request: ActionRequest) -> Decision | None:
    try:
        return request.decision
    except Decision.DoesNotExist:
        return None


def effective_status(request: ActionRequest, *, now: datetime) -> str:
    if request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        return Status.LAPSED
    return request.status


def execution_summary(request: ActionRequest, *, now: datetime) -> dict[str, Any] | None:
    """What became of the approval: the agent's report, the deadline it missed, or the one still open."""
    status = effective_status(request, now=now)
    if status == Status.EXECUTED:
        return {"state": request.execution_status or "executed", "at": request.executed_at}
    if status == Status.LAPSED:
        return {"state": "lapsed", "at": request.approval_expires_at}
    if status == Status.APPROVED:
        return {"state": "awaiting", "at": request.approval_expires_at}
    return None


def _vote_row(vote: Vote) -> dict[str, Any]:
    return {
        "reviewer": vote.reviewer_username,
        "approve": vote.approve,
        "reason": vote.reason,
        "reason_category": reason_category_of(vote),
        "note": vote.note,
        "at": vote.created_at,
    }


def history_row(request: ActionRequest, *, now: datetime) -> dict[str, Any]:
    """What one history row shows. Expects the select/prefetch of ``history_requests``."""
    decision = _decision_of(request)
    if decision is not None:
        seconds: float | None = decision.seconds_to_decide
    elif request.decided_at:
        seconds = (request.decided_at - request.created_at).total_seconds()
    else:
        seconds = None
    return {
        "action": request,
        "id": str(request.pk),
        "short_id": str(request.pk)[:8],
        "status": effective_status(request, now=now),
        "decision": decision,
        "reviewer": decision.reviewer_username if decision else "",
        "votes": [_vote_row(v) for v in request.votes.all()],
        "finished_at": getattr(request, "finished_at", None) or request.decided_at or request.created_at,
        "duration": duration_human(seconds),
        "edited": bool(decision and decision.edited),
        "reason": decision.reason if decision else "",
        "reason_category": reason_category_of(decision),
        "execution": execution_summary(request, now=now),
    }


def history_row_as_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``history_row`` for a JSON door: plain values only (agent-supplied text is left for the client to escape)."""
    request = row["action"]
    execution = row["execution"]
    return {
        "id": row["id"],
        "status": row["status"],
        "action_type": request.action_type,
        "agent": request.agent.name,
        "summary": request.summary,
        "reviewer_group": request.reviewer_group.name if request.reviewer_group_id else None,
        "reviewer": row["reviewer"],
        "surface": row["decision"].surface if row["decision"] else None,
        "edited": row["edited"],
        "reason_category": row["reason_category"],
        "reason": row["reason"],
        "votes": [vote | {"at": isoformat(vote["at"])} for vote in row["votes"]],
        "created_at": isoformat(request.created_at),
        "finished_at": isoformat(row["finished_at"]),
        "seconds_to_decide": row["decision"].seconds_to_decide if row["decision"] else None,
        "execution": {"state": execution["state"], "at": isoformat(execution["at"])} if execution else None,
    }


# --- one request -----------------------------------------------------------------------------


def request_detail_get(*, user: AbstractBaseUser, request_id: Any) -> ActionRequest:
    """The request with everything its page shows, in a fixed number of queries.

    Routed to a group ``user`` is not in, it does not exist for them (as in the queue).
    """
    qs = (
        requests_visible_to(ActionRequest.objects.all(), user)
        .select_related("agent", "decision", "reviewer_group", "escalation_group", "policy")
        .prefetch_related(
            Prefetch("votes", queryset=Vote.objects.order_by("created_at", "id")),
            Prefetch("audit_events", queryset=AuditEvent.objects.order_by("position", "id")),
            Prefetch(
                "webhook_deliveries",
                queryset=WebhookDelivery.objects.order_by("created_at").prefetch_related("attempt_log"),
            ),
        )
    )
    try:
        return qs.get(pk=request_id)
    except (ActionRequest.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No action request {request_id}.") from None


def _display(value: Any) -> str:
    """Strings as they are; anything else as compact JSON, so a nested value stays readable."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2)


def key_value_rows(mapping: Any) -> list[dict[str, str]]:
    if not isinstance(mapping, dict):
        return [{"key": "", "value": _display(mapping)}] if mapping not in (None, "") else []
    return [{"key": str(key), "value": _display(value)} for key, value in mapping.items()]


def _at_pointer(document: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict):
            document = document.get(key)
        else:
            return None
    return document


def params_changes(original: Any, final: Any) -> list[dict[str, Any]]:
    """The reviewer's edit, one row per changed key: added, removed or changed, with both values."""
    rows = []
    for op in json_diff(original, final):
        path = op["path"]
        key = path[1:].replace("/", ".").replace("~1", "/").replace("~0", "~") or "(whole)"
        kind = {"add": "added", "remove": "removed", "replace": "changed"}[op["op"]]
        rows.append(
            {
                "key": key,
                "kind": kind,
                "before": "" if kind == "added" else _pretty(_at_pointer(original, path)),
                "after": "" if kind == "removed" else _pretty(op.get("value")),
            }
        )
    return rows


def _evidence_rows(evidence: Any) -> list[dict[str, Any]]:
    rows = []
    for item in evidence if isinstance(evidence, list) else []:
        item = item if isinstance(item, dict) else {"excerpt": item}
        rows.append(
            {
                "title": _display(item.get("title", "")),
                "url": _display(item.get("url", "")),
                "href": safe_link(item.get("url")),
                "excerpt": _display(item.get("excerpt", "")),
            }
        )
    return rows


def _audit_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "event": event,
        "violation": event.kind == "violation",
        # Empty fields (no note, no reason on an approval) are noise in a trail read for what happened.
        "data": [kv for kv in key_value_rows(event.data) if kv["value"] not in ("", "null")] if event.data else [],
    }


def request_detail(request: ActionRequest) -> dict[str, Any]:
    """Everything one request's page shows. Expects ``request_detail_get``."""
    now = timezone.now()
    decision = _decision_of(request)
    final = decision.final_params if decision else request.final_params
    original = decision.original_params if decision else request.params
    events = [_audit_row(e) for e in request.audit_events.all()]
    return {
        "action": request,
        "row": history_row(request, now=now),
        "params": key_value_rows(request.params),
        "context": key_value_rows(request.context),
        "evidence": _evidence_rows(request.evidence),
        "changes": params_changes(original, final) if decision and decision.edited and final is not None else [],
        "final_params": key_value_rows(final) if final is not None else [],
        "execution_result": _pretty(request.execution_result) if request.execution_result is not None else "",
        "deliveries": list(request.webhook_deliveries.all()),
        "events": events,
        "violations": [e for e in events if e["violation"]],
        "audit_check": _audit_trail_check(request),
    }


def login_lockout_ends_at(*, username: str | None, ip_address: str | None) -> datetime | None:
    """When a sign-in lockout on this username or address ends, at the latest (None: no recent failures).

    Axes forgets a failure ``COUNTERSIGN_LOGIN_LOCKOUT_SECONDS`` after the last failure of its row, so
    the newest failure counted against either of them plus that period is when sign-in works again.
    """
    cool_off = timedelta(seconds=settings.COUNTERSIGN_LOGIN_LOCKOUT_SECONDS)
    matches = Q(pk__in=[])
    if username:
        matches |= Q(username=username)
    if ip_address:
        matches |= Q(ip_address=ip_address)
    newest = (
        AccessAttempt.objects.filter(matches, attempt_time__gte=timezone.now() - cool_off)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    return newest + cool_off if newest else None


def _audit_trail_check(request: ActionRequest) -> ChainCheck:
    """The page's own events checked against the request's head; a failure is read again under the row lock,
    so an event appended between the page's two reads is not shown as tampering."""
    check = audit_chain_check(
        request_id=request.pk,
        audit_length=request.audit_length,
        audit_head=request.audit_head,
        events=request.audit_events.all(),
    )
    return check if check.ok else audit_chain_verify_request(request_id=request.pk)


# --- personal access tokens ------------------------------------------------------------------


def personal_access_tokens_of(*, user: AbstractBaseUser) -> list[PersonalAccessToken]:
    """The user's tokens, newest first (revoked and expired ones too, marked as such by the page)."""
    return list(PersonalAccessToken.objects.filter(user=user))


def personal_access_token_for(raw_token: str) -> PersonalAccessToken | None:
    """The token row for a raw token, with its user; None when no token hashes to it."""
    return PersonalAccessToken.objects.select_related("user").filter(token_hash=hash_api_key(raw_token)).first()
