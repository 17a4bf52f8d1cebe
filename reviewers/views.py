from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.email_links import email_link_read
from approvals.models import AfterReviewLabelKind, Surface
from approvals.push import push_enabled
from approvals.selectors import after_review_page, reject_reason_categories, safe_link, user_is_reviewer
from approvals.services import (
    action_request_decide,
    action_request_decide_by_email_link,
    action_request_decide_by_push,
    action_request_label,
    action_requests_decide_batch,
)
from core.errors import ServiceError
from core.jsonbody import json_object_body_checked
from core.responses import error_response

from .quality import reviewer_agreement, reviewer_figures, second_opinion_next
from .selectors import (
    HISTORY_STATUSES,
    history_filters_from,
    history_page,
    personal_access_tokens_of,
    queue_state,
    request_detail,
    request_detail_get,
)
from .services import (
    personal_access_token_create,
    personal_access_token_revoke,
    push_subscription_remove,
    push_subscription_save,
    second_opinion_record,
)

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "countersign" / "push" / "sw.js"


def _require_reviewer(request: HttpRequest) -> None:
    if not user_is_reviewer(request.user):
        raise PermissionDenied("Only members of a reviewer group can see the queue.")


def _queue_state(request: HttpRequest) -> dict[str, Any]:
    return queue_state(user=request.user, params=request.GET)


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
            surface=Surface.BATCH,
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JsonResponse({"results": results})


@login_required
@require_POST
def decide(request: HttpRequest, request_id: str) -> JsonResponse:
    # Whether the user reviews at all is answered by the decide service, in the query that reads the request.
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
            surface=Surface.WEB,
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


# --- one-click decisions from a notification email ------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def email_decision(request: HttpRequest) -> HttpResponse:
    """A reviewer's email link: GET shows the card and one confirm button (deciding nothing); POST decides."""
    token = (request.POST if request.method == "POST" else request.GET).get("t", "")
    context: dict[str, Any] = {"token": token, "categories": reject_reason_categories()}
    status = 200
    try:
        link = email_link_read(token=token, reviewer=request.user)
        context |= {
            "link": link,
            **request_detail(request_detail_get(user=request.user, request_id=link.notification.request_id)),
        }
        if request.method == "POST":
            decision = action_request_decide_by_email_link(
                token=token,
                reviewer=request.user,
                reason=request.POST.get("reason", ""),
                reason_category=request.POST.get("reason_category", ""),
            )
            context |= {"decided": decision, "status_now": decision.request.status}
    except ServiceError as exc:
        context["error"] = exc.message
        status = exc.status
    response = render(request, "reviewers/email_decision.html", context, status=status)
    # The token is in the URL: keep it out of caches and of the Referer of any link on the page.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- Web Push: a reviewer's devices, the service worker, and the notification's Approve ---------------


@login_required
@require_GET
def push_page(request: HttpRequest) -> HttpResponse:
    _require_reviewer(request)
    return render(
        request,
        "reviewers/push.html",
        {
            "enabled": push_enabled(),
            "vapid_public_key": settings.COUNTERSIGN_VAPID_PUBLIC_KEY,
            "devices": request.user.push_subscriptions.order_by("-created_at"),
        },
    )


@login_required
@require_POST
def push_subscribe(request: HttpRequest) -> JsonResponse:
    if not user_is_reviewer(request.user):
        return error_response(403, "permission_denied", "Only members of a reviewer group get push notifications.")
    if not push_enabled():
        return error_response(
            409, "push_not_configured", "Push is not configured on this server (COUNTERSIGN_VAPID_*)."
        )
    try:
        body = json_object_body_checked(request, what="The subscription")
        saved = push_subscription_save(
            user=request.user, subscription=body.get("subscription"), device=str(body.get("device") or "")
        )
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    return JsonResponse({"id": saved.pk}, status=201)


@login_required
@require_POST
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    """Remove a device: by endpoint (the page's JavaScript) or by id (the list's Remove button)."""
    if request.content_type == "application/json":
        try:
            body = json_object_body_checked(request, what="The request")
        except ServiceError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details)
        push_subscription_remove(user=request.user, endpoint=str(body.get("endpoint") or ""))
        return JsonResponse({"removed": True})
    push_subscription_remove(user=request.user, subscription_id=request.POST.get("id") or 0)
    return redirect("reviewers:push")


# The token, encrypted to the reviewer's device and bound to them, request and revision, is what a
# forged cross-site POST cannot have: it stands in for the CSRF token a service worker cannot read.
@csrf_exempt
@require_POST
def push_decide(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return error_response(401, "not_authenticated", "Sign in to Countersign in this browser, then try again.")
    try:
        body = json_object_body_checked(request, what="The decision")
        decision = action_request_decide_by_push(token=str(body.get("token") or ""), reviewer=request.user)
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    pending = decision.request.status == "pending"
    return JsonResponse(
        {
            "id": str(decision.request_id),
            "status": decision.request.status,
            "message": "Your approval is recorded; more approvals are needed." if pending else "Approved",
        }
    )


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, from the site's root so that its scope is the whole site."""
    response = HttpResponse(SERVICE_WORKER.read_text(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


# --- personal access tokens for the reviewer API ---------------------------------------------


def _tokens_page(request: HttpRequest, status: int = 200, **context: Any) -> HttpResponse:
    context = {
        "tokens": personal_access_tokens_of(user=request.user),
        "now": timezone.now(),
        "max_days": settings.COUNTERSIGN_PAT_MAX_LIFETIME_DAYS,
        "default_days": settings.COUNTERSIGN_PAT_DEFAULT_LIFETIME_DAYS,
        **context,
    }
    response = render(request, "reviewers/tokens.html", context, status=status)
    # The page that shows a new token once must not be kept by a cache or the browser's history.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    """List the reviewer's tokens; a POST creates one and shows it this once."""
    _require_reviewer(request)
    if request.method == "GET":
        return _tokens_page(request, revoked=request.GET.get("revoked") == "1")
    name = request.POST.get("name", "")
    try:
        lifetime_days = int(request.POST.get("lifetime_days", ""))
    except ValueError:
        lifetime_days = 0
    try:
        token, raw = personal_access_token_create(
            user=request.user, name=name, lifetime_days=lifetime_days, read_only=request.POST.get("read_only") == "1"
        )
    except ServiceError as exc:
        return _tokens_page(request, status=400, error=exc.message, form_name=name[:100])
    return _tokens_page(request, new_token=token, raw_token=raw)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    _require_reviewer(request)
    if not personal_access_token_revoke(user=request.user, token_id=token_id):
        raise Http404("No such active token of yours.")
    return redirect(reverse("reviewers:tokens") + "?revoked=1")


# --- blind second opinions and reviewer quality ---------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def second_opinion_page(request: HttpRequest) -> HttpResponse:
    """The next decided request of the sample, shown without its decision; a POST records the reviewer's call."""
    _require_reviewer(request)
    if request.method == "POST":
        choice = request.POST.get("decision", "")
        if choice not in {"approve", "reject"}:
            return render(request, "reviewers/second_opinion.html", {"error": "Choose Approve or Reject."}, status=400)
        try:
            second_opinion_record(
                user=request.user, request_id=request.POST.get("request_id", ""), approve=choice == "approve"
            )
        except ServiceError as exc:
            return render(request, "reviewers/second_opinion.html", {"error": exc.message}, status=exc.status)
        return redirect(reverse("reviewers:second-opinion") + "?recorded=1")
    item = second_opinion_next(user=request.user)
    return render(
        request,
        "reviewers/second_opinion.html",
        {
            "item": item,
            "params_json": json.dumps(item.params, indent=2, ensure_ascii=False) if item else "",
            "recorded": request.GET.get("recorded") == "1",
        },
    )


QUALITY_WINDOWS = (7, 30, 90)


@login_required
@require_GET
def quality_page(request: HttpRequest) -> HttpResponse:
    """Staff only: each reviewer's figures and the agreement of blind second opinions, never shown to reviewers."""
    if not request.user.is_staff:
        raise PermissionDenied("Reviewer quality is for staff.")
    try:
        days = int(request.GET.get("days", "30"))
    except ValueError:
        days = 30
    days = days if days in QUALITY_WINDOWS else 30
    until = timezone.now()
    since = until - timedelta(days=days)
    return render(
        request,
        "reviewers/quality.html",
        {
            "days": days,
            "windows": QUALITY_WINDOWS,
            "reviewers": reviewer_figures(since=since, until=until),
            "agreement": reviewer_agreement(since=since, until=until),
            "fast_seconds": settings.COUNTERSIGN_FAST_APPROVAL_SECONDS,
            "sample_rate_pct": settings.COUNTERSIGN_SECOND_OPINION_RATE * 100,
        },
    )


# --- review afterwards -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def afterwards_page(request: HttpRequest) -> HttpResponse:
    """Requests that ran without a reviewer (log, sampled auto), oldest first; a POST labels one."""
    _require_reviewer(request)
    if request.method == "POST":
        try:
            action_request_label(
                request_id=request.POST.get("request_id", ""),
                reviewer=request.user,
                label=request.POST.get("label", ""),
                reason_category=request.POST.get("reason_category", ""),
                note=request.POST.get("note", ""),
                surface=Surface.WEB,
            )
        except ServiceError as exc:
            return _afterwards(request, status=exc.status, error=exc.message)
        return redirect(reverse("reviewers:afterwards") + "?labelled=1")
    try:
        return _afterwards(
            request, cursor=request.GET.get("cursor") or None, labelled=request.GET.get("labelled") == "1"
        )
    except ServiceError as exc:
        return _afterwards(request, status=exc.status, error=exc.message)


def _afterwards(request: HttpRequest, *, status: int = 200, cursor: str | None = None, **context: Any) -> HttpResponse:
    page = after_review_page(user=request.user, cursor=cursor)
    cards = [
        {
            "request": item,
            "params_json": json.dumps(item.params, indent=2, ensure_ascii=False),
            "evidence": [
                {"title": str(e.get("title", "")), "url": safe_link(e.get("url"))}
                for e in (item.evidence or [])
                if isinstance(e, dict)
            ][:5],
        }
        for item in page.requests
    ]
    return render(
        request,
        "reviewers/afterwards.html",
        {
            "cards": cards,
            "next_cursor": page.next_cursor,
            "categories": reject_reason_categories(),
            "labels": AfterReviewLabelKind.choices,
            **context,
        },
        status=status,
    )
