"""The evaluation dashboard: server-rendered tables and SVG bars, with drill-down to decisions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals.models import Agent, ContainmentKind
from approvals.selectors import containment_counts, pauses_active, user_is_reviewer
from core.errors import ServiceError

from .budgets import budget_uses
from .candidates import auto_candidates, tightening_candidates
from .models import AlertStatus, DriftAlert
from .records import reason_category
from .release_gate import agent_versions, release_gate
from .selectors import (
    GROUP_FIELDS,
    daily_volume,
    decision_cursor_encode,
    decision_filters_from,
    decision_times_by_surface,
    decisions_after,
    decisions_filtered,
    metrics_by,
    paused_submissions,
)
from .services import drift_alert_acknowledge

WINDOWS = (1, 7, 30, 90)
DECISIONS_PAGE = 50
CHART_HEIGHT = 120
AUTO_CANDIDATE_N = 200


def _require_dashboard_access(request: HttpRequest) -> None:
    if not (request.user.is_staff or user_is_reviewer(request.user)):
        raise PermissionDenied("The dashboard is for reviewers and admins.")


def _pct(value: float | None) -> int:
    return round((value or 0) * 100)


def _containment_table(*, since) -> list[dict]:
    """One row per (agent, action type): how many submissions each containment kind stopped or collapsed."""
    rows: dict[tuple[str, str], dict] = {}
    for count in containment_counts(since=since.date()):
        row = rows.setdefault(
            (count["agent"], count["action_type"]),
            {
                "agent": count["agent"],
                "action_type": count["action_type"],
                "counts": dict.fromkeys(ContainmentKind.values, 0),
            },
        )
        row["counts"][count["kind"]] += count["count"]
    return [
        {**row, "cells": [row["counts"][kind] for kind in ContainmentKind.values]}
        for row in sorted(rows.values(), key=lambda r: (-sum(r["counts"].values()), r["agent"], r["action_type"]))
    ][:100]


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    _require_dashboard_access(request)
    try:
        days = int(request.GET.get("days", "7"))
    except ValueError:
        days = 7
    days = days if days in WINDOWS else 7
    group = request.GET.get("group", "action_type")
    group = group if group in GROUP_FIELDS else "action_type"
    action_type = request.GET.get("action_type") or None
    until = timezone.now()
    since = until - timedelta(days=days)
    since_param = since.isoformat().replace("+00:00", "Z")

    rows = []
    for row in metrics_by(group=group, since=since, until=until, action_type=action_type):
        drill = (
            {"action_type": row.key}
            if group == "action_type"
            else ({"agent": row.key} if group == "agent" else {"policy": row.key})
        )
        rows.append(
            {
                "m": row,
                "drill": drill,
                "escalation_pct": _pct(row.escalation_rate),
                "approval_pct": _pct(row.approval_rate),
                "edit_pct": _pct(row.edit_rate),
                "rejection_pct": _pct(row.rejection_rate),
                "expiry_pct": _pct(row.expiry_rate),
                "blocked_pct": _pct(row.blocked_rate),
            }
        )

    days_rows = daily_volume(since=since, until=until, action_type=action_type)
    peak = max((d["total"] for d in days_rows), default=0) or 1
    bar_width = 24
    chart = []
    for i, d in enumerate(days_rows):
        height = round(CHART_HEIGHT * d["total"] / peak)
        rejected_h = round(CHART_HEIGHT * d["rejected"] / peak)
        chart.append(
            {
                "x": i * (bar_width + 6),
                "y": CHART_HEIGHT - height,
                "height": height,
                "rejected_y": CHART_HEIGHT - rejected_h,
                "rejected_height": rejected_h,
                "day": d["day"],
                "total": d["total"],
                "rejected": d["rejected"],
                "escalated": d["escalated"],
            }
        )

    alerts = DriftAlert.objects.filter(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]).select_related(
        "agent", "acknowledged_by"
    )[:50]
    return render(
        request,
        "evaluation/dashboard.html",
        {
            "rows": rows,
            "group": group,
            "groups": list(GROUP_FIELDS),
            "days": days,
            "windows": WINDOWS,
            "action_type": action_type or "",
            "since_param": since_param,
            "chart": chart,
            "chart_width": max(len(chart) * (bar_width + 6), bar_width),
            "chart_height": CHART_HEIGHT,
            "bar_width": bar_width,
            "alerts": alerts,
            "paused_rows": paused_submissions(since=since, until=until),
            "surfaces": decision_times_by_surface(since=since, until=until),
            "budgets": budget_uses(now=until),
            "containment": _containment_table(since=since),
            "containment_kinds": ContainmentKind.choices,
            "pauses": pauses_active(),
            "candidates": auto_candidates(last_n=AUTO_CANDIDATE_N),
            "tightening": tightening_candidates(since=since),
            "candidate_n": AUTO_CANDIDATE_N,
            # The simulation page is the policies app's, for staff who may read the table.
            "can_simulate": request.user.is_staff and request.user.has_perm("policies.view_policy"),
        },
    )


@login_required
@require_GET
def decisions_page(request: HttpRequest) -> HttpResponse:
    """The decisions behind a number: the export's filters and cursor, as a table."""
    _require_dashboard_access(request)
    try:
        filters = decision_filters_from(request.GET)
        qs = decisions_after(decisions_filtered(filters), request.GET.get("cursor"))
    except ServiceError as exc:
        return HttpResponseBadRequest(exc.message)
    alert = None
    if request.GET.get("alert"):
        alert = get_object_or_404(DriftAlert, pk=request.GET["alert"])
        qs = qs.filter(pk__in=alert.decision_ids)
    page = list(qs[: DECISIONS_PAGE + 1])
    has_more = len(page) > DECISIONS_PAGE
    page = page[:DECISIONS_PAGE]
    query = request.GET.copy()
    if has_more:
        query["cursor"] = decision_cursor_encode(page[-1])
    items = [{"d": d, "category": reason_category(d.reason, d.reason_category)} for d in page]
    return render(
        request,
        "evaluation/decisions.html",
        {
            "items": items,
            "filters": {k: v for k, v in request.GET.items() if k not in {"cursor"}},
            "next_query": query.urlencode() if has_more else "",
            "alert": alert,
        },
    )


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    _require_dashboard_access(request)
    get_object_or_404(DriftAlert, pk=alert_id)
    drift_alert_acknowledge(alert_id=alert_id, user=request.user)
    return redirect("evaluation:dashboard")


@login_required
@require_GET
def release_gate_page(request: HttpRequest) -> HttpResponse:
    """Staff: the release gate's report for an agent's two versions (the same as GET /api/v1/release-gate/)."""
    if not request.user.is_staff:
        raise PermissionDenied("The release gate is for staff.")
    agents = list(Agent.objects.order_by("name").values_list("name", flat=True)[:500])
    name = request.GET.get("agent", "").strip()
    baseline, candidate = request.GET.get("baseline", "").strip(), request.GET.get("candidate", "").strip()
    agent = Agent.objects.filter(name=name).first() if name else None
    versions = agent_versions(agent=agent) if agent else []
    report, error = None, ""
    if agent and baseline and candidate:
        if baseline == candidate or baseline not in versions or candidate not in versions:
            error = "Choose two different versions this agent has sent."
        else:
            report = release_gate(agent=agent, baseline=baseline, candidate=candidate)
    elif name and agent is None:
        error = f"No agent named {name!r}."
    return render(
        request,
        "evaluation/release_gate.html",
        {
            "agents": agents,
            "agent": name,
            "versions": versions,
            "baseline": baseline,
            "candidate": candidate,
            "report": report,
            "error": error,
        },
        status=400 if error else 200,
    )
