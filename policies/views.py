"""The release-gate page: edit the whole table as YAML, simulate it against real history, save or publish."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.errors import ServiceError

from .selectors import policy_table_from_rows
from .services import policy_draft_publish, policy_draft_save, policy_rows_validate
from .simulation import policy_table_simulate
from .yaml_io import policies_from_yaml, policies_to_yaml


@staff_member_required
@require_http_methods(["GET", "POST"])
def simulate_page(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("policies.view_policy"):
        raise PermissionDenied
    context: dict = {"table_yaml": "", "days": "7", "limit": "", "change_note": "", "draft_name": "", "errors": None}
    if request.method == "GET":
        context["table_yaml"] = policies_to_yaml()
        return render(request, "policies/simulate.html", context)

    action = request.POST.get("action", "simulate")
    context.update(
        table_yaml=request.POST.get("table_yaml", ""),
        days=request.POST.get("days", "").strip(),
        limit=request.POST.get("limit", "").strip(),
        change_note=request.POST.get("change_note", ""),
        draft_name=request.POST.get("draft_name", ""),
    )
    status = 200
    try:
        rows = policies_from_yaml(context["table_yaml"])
        policy_rows_validate([{k: v for k, v in r.items() if k != "id"} for r in rows])
        if action == "simulate":
            days = int(context["days"]) if context["days"] else None
            limit = int(context["limit"]) if context["limit"] else None
            if days is None and limit is None:
                days = 7
            context["report"] = policy_table_simulate(table=policy_table_from_rows(rows), days=days, limit=limit)
        else:
            if not request.user.has_perm("policies.change_policy"):
                raise PermissionDenied
            draft = policy_draft_save(
                actor=request.user,
                name=context["draft_name"] or "Draft from the simulate page",
                rows=rows,
                note=context["change_note"],
            )
            if action == "publish":
                version = policy_draft_publish(actor=request.user, draft_id=draft.id, note=context["change_note"])
                context["published"] = version
            else:
                context["draft"] = draft
    except ValueError:
        context["errors"] = {"message": "days and limit must be whole numbers.", "fields": {}}
        status = 422
    except ServiceError as exc:
        context["errors"] = {"message": exc.message, "fields": exc.details.get("fields", {}), "code": exc.code}
        status = 422
    return render(request, "policies/simulate.html", context, status=status)
