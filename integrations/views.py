"""Slack's doors: the interactions endpoint (signed by Slack, no session) and the reviewer's link page."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ServiceError
from core.responses import error_response

from .slack_identity import slack_identities_of, slack_identity_link, slack_identity_unlink, slack_link_token_read
from .slack_interactions import MalformedPayload, slack_app_verifying, slack_interaction_handle


@csrf_exempt  # Slack cannot send our CSRF token: its signature is the proof (checked before anything else)
@require_POST
def slack_interactions(request: HttpRequest) -> HttpResponse:
    app = slack_app_verifying(request.body, request.headers)
    if app is None:
        return error_response(
            401,
            "invalid_signature",
            "The request is not signed by a configured Slack app, or its timestamp is more than 5 minutes off.",
        )
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return error_response(400, "invalid_payload", "Expected a form field 'payload' holding a JSON object.")
    try:
        answer = slack_interaction_handle(app=app, payload=payload)
    except MalformedPayload as exc:
        return error_response(400, "invalid_payload", str(exc))
    return JsonResponse(answer) if answer is not None else HttpResponse(status=200)


@login_required
@require_http_methods(["GET", "POST"])
def slack_link(request: HttpRequest) -> HttpResponse:
    """Link the Slack user a token names to the signed-in account (GET shows what will be linked; POST links)."""
    token = request.POST.get("t") if request.method == "POST" else request.GET.get("t")
    context: dict = {"token": token or "", "identities": slack_identities_of(user=request.user)}
    try:
        team_id, slack_user_id = slack_link_token_read(token or "")
    except ServiceError as exc:
        return render(request, "integrations/slack.html", context | {"error": exc.message}, status=400)
    context |= {"team_id": team_id, "slack_user_id": slack_user_id}
    if request.method == "GET":
        return render(request, "integrations/slack.html", context)
    try:
        slack_identity_link(user=request.user, team_id=team_id, slack_user_id=slack_user_id)
    except ServiceError as exc:
        return render(request, "integrations/slack.html", context | {"error": exc.message}, status=exc.status)
    return redirect(reverse("integrations:slack-settings") + "?linked=1")


@login_required
@require_http_methods(["GET"])
def slack_settings(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "integrations/slack.html",
        {"identities": slack_identities_of(user=request.user), "linked": request.GET.get("linked") == "1"},
    )


@login_required
@require_POST
def slack_unlink(request: HttpRequest, identity_id: int) -> HttpResponse:
    if not slack_identity_unlink(user=request.user, identity_id=identity_id):
        raise Http404("No such Slack link of yours.")
    return redirect("integrations:slack-settings")
