from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from approvals.selectors import QueueFilters, pause_as_json, pauses_active, reject_reason_categories, user_is_reviewer
from approvals.selectors import queue_page as queue_page_select
from approvals.services import action_request_decide, action_requests_decide_batch
from core.errors import ServiceError
from core.jsonbody import json_object_body_checked
from core.responses import error_response

from .selectors import (
    HISTORY_STATUSES,
    claims_active,
    history_filters_from,
    history_page,
    request_detail,
    request_detail_get,
)


def _require_reviewer(request: HttpRequest) -> None:
    if not user_is_reviewer(request.user):
        raise PermissionDenied("Only members of a reviewer group can see the queue.")


def _queue_state(request: HttpRequest) -> dict[str, Any]:
    """Everything the queue page needs for one view of the queue (the page and cards.json share it)."""
    filters = QueueFilters.from_query(request.GET)
    page = queue_page_select(
        user=request.user,
        filters=filters,
        cursor=request.GET.get("cursor", ""),
        counts=request.GET.get("counts") != "0",
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


@login_required
@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    _require_reviewer(request)
    try:
        state = _queue_state(request)
    except ServiceError:
        # A hand-edited URL with a bad filter: show the unfiltered queue rather than an error page.
        request.GET = QueryDict()
        state = _queue_state(request)
    state |= {
        "me": request.user.get_username(),
        "my_groups": list(request.user.groups.values_list("name", flat=True)),
        "reason_categories": reject_reason_categories(),
        "claim_timeout_seconds": settings.COUNTERSIGN_CLAIM_TIMEOUT_SECONDS,
    }
    return render(request, "reviewers/queue.html", {"state": state, "total": state["total"]})


@login_required
@require_GET
def queue_cards_json(request: HttpRequest) -> JsonResponse:
    if not user_is_reviewer(request.user):
        return error_response(403, "permission_denied", "Only members of a reviewer group can see the queue.")
    try:
        return JsonResponse(_queue_state(request))
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)


@login_required
@require_POST
def batch_decide(request: HttpRequest) -> JsonResponse:
    """Approve or reject several cards of one action type; each is decided (or refused) on its own."""
    if not user_is_reviewer(request.user):
        return error_response(403, "permission_denied", "Only members of a reviewer group can decide requests.")
    try:
        body = json_object_body_checked(request, what="The batch")
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    verdict = body.get("decision")
    if verdict not in {"approve", "reject"}:
        return error_response(422, "invalid_decision", "decision must be 'approve' or 'reject'.")
    items = body.get("items")
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in items)
    ):
        return error_response(422, "invalid_items", 'items must be a non-empty list of {"id": ..., "revision": ...}.')
    try:
        results = action_requests_decide_batch(
            reviewer=request.user,
            items=[(item["id"], item.get("revision")) for item in items],
            approve=verdict == "approve",
            reason=str(body.get("reason") or ""),
            reason_category=str(body.get("reason_category") or ""),
            note=str(body.get("note") or ""),
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JsonResponse({"results": results})


@login_required
@require_POST
def decide(request: HttpRequest, request_id: str) -> JsonResponse:
    if not user_is_reviewer(request.user):
        return error_response(403, "permission_denied", "Only members of a reviewer group can decide requests.")
    try:
        body = json_object_body_checked(request, what="The decision")
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    verdict = body.get("decision")
    if verdict not in {"approve", "reject"}:
        return error_response(422, "invalid_decision", "decision must be 'approve' or 'reject'.")
    revision = body.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
        return error_response(422, "invalid_revision", "revision must be an integer.")
    try:
        decision = action_request_decide(
            request_id=request_id,
            reviewer=request.user,
            approve=verdict == "approve",
            final_params=body.get("params"),
            reason=str(body.get("reason") or ""),
            reason_category=str(body.get("reason_category") or ""),
            note=str(body.get("note") or ""),
            seen_revision=revision,
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JsonResponse({"id": str(decision.request_id), "status": decision.request.status, "edited": decision.edited})


# --- history: the decided view and one request's audit trail ---------------------------------


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    _require_reviewer(request)
    context = {"query": request.GET, "statuses": HISTORY_STATUSES, "rows": [], "next_query": None, "error": None}
    try:
        page = history_page(
            user=request.user, filters=history_filters_from(request.GET), cursor=request.GET.get("cursor")
        )
    except ServiceError as exc:
        context["error"] = exc.message
        return render(request, "reviewers/history.html", context, status=400)
    if page.next_cursor:
        following = request.GET.copy()
        following["cursor"] = page.next_cursor
        context["next_query"] = following.urlencode()
    context["rows"] = page.rows
    context["first_page"] = not request.GET.get("cursor")
    return render(request, "reviewers/history.html", context)


@login_required
@require_GET
def request_page(request: HttpRequest, request_id: str) -> HttpResponse:
    _require_reviewer(request)
    try:
        found = request_detail_get(user=request.user, request_id=request_id)
    except ServiceError:
        raise Http404("No such request.") from None
    return render(request, "reviewers/request_detail.html", request_detail(found))
