from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from approvals.api.errors import error_response
from approvals.errors import ServiceError
from approvals.selectors import queue_cards, user_is_reviewer
from approvals.services import action_request_decide


def _require_reviewer(request: HttpRequest) -> None:
    if not user_is_reviewer(request.user):
        raise PermissionDenied("Only members of a reviewer group can see the queue.")


@login_required
@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    _require_reviewer(request)
    return render(request, "reviewers/queue.html", {"cards": queue_cards(user=request.user)})


@login_required
@require_GET
def queue_cards_json(request: HttpRequest) -> JsonResponse:
    _require_reviewer(request)
    return JsonResponse({"cards": queue_cards(user=request.user)})


@login_required
@require_POST
def decide(request: HttpRequest, request_id: str) -> JsonResponse:
    if not user_is_reviewer(request.user):
        return error_response(403, "permission_denied", "Only members of a reviewer group can decide requests.")
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error_response(400, "malformed_json", "The decision must be a JSON object.")
    if not isinstance(body, dict):
        return error_response(400, "malformed_json", "The decision must be a JSON object.")
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
