"""/metrics: the same counts as the dashboard, for Prometheus.

Computed from the database at scrape time (a fresh registry per scrape), so every web
process reports the same numbers and nothing is lost on restart. Labels are bounded:
action types, agents and policies (their action pattern, never a request id) beyond the
busiest COUNTERSIGN_METRICS_MAX_LABEL_VALUES are reported as "other", so an agent
inventing action types cannot explode the series count.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from approvals.api.authentication import bearer_token
from approvals.models import PAUSED_VERDICT, ActionRequest, Decision
from approvals.selectors import after_review_label_counts, containment_counts

from .models import AlertStatus, DriftAlert

OTHER = "other"
DEFAULT_POLICY = "(default)"  # requests no policy row matched: the table's fail-closed default
DECISION_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)


def _top_values(field: str, limit: int) -> set[str]:
    rows = ActionRequest.objects.values(field).annotate(n=Count("id")).order_by("-n", field)[:limit]
    return {row[field] for row in rows}


def _label(value: str | None, allowed: set[str]) -> str:
    return value if value in allowed else OTHER


def _policy_label(value: str | None, allowed: set[str]) -> str:
    return DEFAULT_POLICY if not value else _label(value, allowed)


class CountersignCollector:
    def __init__(self, *, max_label_values: int) -> None:
        self.max_label_values = max_label_values

    def collect(self) -> Iterator:
        types = _top_values("action_type", self.max_label_values)
        agents = _top_values("agent__name", self.max_label_values)
        policies = _top_values("policy_pattern", self.max_label_values)

        requests = CounterMetricFamily(
            "countersign_action_requests",
            "Action requests submitted, by action type and policy mode.",
            labels=["action_type", "mode"],
        )
        folded: dict[tuple[str, ...], float] = defaultdict(float)
        for row in ActionRequest.objects.values("action_type", "mode").annotate(n=Count("id")).order_by():
            folded[(_label(row["action_type"], types), row["mode"])] += row["n"]
        for labels, value in sorted(folded.items()):
            requests.add_metric(list(labels), value)
        yield requests

        by_agent = CounterMetricFamily(
            "countersign_agent_action_requests",
            "Action requests submitted, by agent and policy mode.",
            labels=["agent", "mode"],
        )
        folded = defaultdict(float)
        for row in ActionRequest.objects.values("agent__name", "mode").annotate(n=Count("id")).order_by():
            folded[(_label(row["agent__name"], agents), row["mode"])] += row["n"]
        for labels, value in sorted(folded.items()):
            by_agent.add_metric(list(labels), value)
        yield by_agent

        by_policy = CounterMetricFamily(
            "countersign_policy_action_requests",
            "Action requests submitted, by the policy (action pattern) that decided their mode.",
            labels=["policy", "mode"],
        )
        folded = defaultdict(float)
        for row in ActionRequest.objects.values("policy_pattern", "mode").annotate(n=Count("id")).order_by():
            folded[(_policy_label(row["policy_pattern"], policies), row["mode"])] += row["n"]
        for labels, value in sorted(folded.items()):
            by_policy.add_metric(list(labels), value)
        yield by_policy

        status = GaugeMetricFamily(
            "countersign_action_requests_in_status",
            "Action requests currently in each status.",
            labels=["action_type", "status"],
        )
        folded = defaultdict(float)
        for row in ActionRequest.objects.values("action_type", "status").annotate(n=Count("id")).order_by():
            folded[(_label(row["action_type"], types), row["status"])] += row["n"]
        for labels, value in sorted(folded.items()):
            status.add_metric(list(labels), value)
        yield status

        decisions = CounterMetricFamily(
            "countersign_decisions",
            "Human decisions, by action type, outcome and whether params were edited.",
            labels=["action_type", "outcome", "edited"],
        )
        folded = defaultdict(float)
        for row in (
            Decision.objects.values("request__action_type", "outcome", "edited").annotate(n=Count("id")).order_by()
        ):
            key = (_label(row["request__action_type"], types), row["outcome"], "true" if row["edited"] else "false")
            folded[key] += row["n"]
        for labels, value in sorted(folded.items()):
            decisions.add_metric(list(labels), value)
        yield decisions

        for name, column, label, allowed in (
            ("countersign_agent_decisions", "request__agent__name", "agent", agents),
            ("countersign_policy_decisions", "request__policy_pattern", "policy", policies),
        ):
            family = CounterMetricFamily(
                name,
                f"Human decisions, by {label}, outcome and whether params were edited.",
                labels=[label, "outcome", "edited"],
            )
            folded = defaultdict(float)
            fold = _policy_label if label == "policy" else _label
            for row in Decision.objects.values(column, "outcome", "edited").annotate(n=Count("id")).order_by():
                folded[(fold(row[column], allowed), row["outcome"], "true" if row["edited"] else "false")] += row["n"]
            for labels, value in sorted(folded.items()):
                family.add_metric(list(labels), value)
            yield family

        yield self._time_to_decision("action_type", "request__action_type", lambda v: _label(v, types))
        yield self._time_to_decision("policy", "request__policy_pattern", lambda v: _policy_label(v, policies))
        # Surfaces are a closed set (approvals.models.Surface): no folding needed.
        yield self._time_to_decision("surface", "surface", lambda v: v or "web")

        if any(f.name == "execution_status" for f in ActionRequest._meta.get_fields()):
            executions = CounterMetricFamily(
                "countersign_executions",
                "Execution reports from agents, by action type and outcome.",
                labels=["action_type", "outcome"],
            )
            folded = defaultdict(float)
            rows = (
                ActionRequest.objects.exclude(execution_status="")
                .values("action_type", "execution_status")
                .annotate(n=Count("id"))
                .order_by()
            )
            for row in rows:
                folded[(_label(row["action_type"], types), row["execution_status"])] += row["n"]
            for labels, value in sorted(folded.items()):
                executions.add_metric(list(labels), value)
            yield executions

        # Submissions a pause blocked (kill switch): walks the partial index paused_submissions only.
        paused_rows = (
            ActionRequest.objects.filter(PAUSED_VERDICT)
            .values("agent__name", "action_type", "verdict_reason")
            .annotate(n=Count("id"))
            .order_by()
        )
        paused_by_agent: dict[tuple[str, ...], float] = defaultdict(float)
        paused_by_type: dict[tuple[str, ...], float] = defaultdict(float)
        for row in paused_rows:
            paused_by_agent[(_label(row["agent__name"], agents), row["verdict_reason"])] += row["n"]
            paused_by_type[(_label(row["action_type"], types), row["verdict_reason"])] += row["n"]
        for name, label, folded_counts in (
            ("countersign_agent_paused_submissions", "agent", paused_by_agent),
            ("countersign_paused_submissions", "action_type", paused_by_type),
        ):
            family = CounterMetricFamily(
                name,
                f"Submissions blocked by a pause (kill switch), by {label} and which pause "
                "(agent_paused or action_type_paused).",
                labels=[label, "reason"],
            )
            for labels, value in sorted(folded_counts.items()):
                family.add_metric(list(labels), value)
            yield family
        yield self._containment()
        yield self._after_review_labels()

        alerts = GaugeMetricFamily(
            "countersign_drift_alerts_open", "Drift alerts not yet resolved, by kind.", labels=["kind"]
        )
        for row in (
            DriftAlert.objects.filter(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
            .values("kind")
            .annotate(n=Count("id"))
            .order_by("kind")
        ):
            alerts.add_metric([row["kind"]], row["n"])
        yield alerts

    def _after_review_labels(self) -> CounterMetricFamily:
        """Requests reviewed afterwards, by label (fine, should_have_asked, should_have_blocked, unlabelled)."""
        family = CounterMetricFamily(
            "countersign_after_review_labels",
            "Requests that ran without a reviewer, labelled afterwards (or left unlabelled when too old), "
            "by action type, agent, policy and label.",
            labels=["action_type", "agent", "policy", "label"],
        )
        rows = after_review_label_counts()
        busiest: dict[str, set[str]] = {}
        for label in ("action_type", "agent", "policy"):
            totals: dict[str, int] = defaultdict(int)
            for row in rows:
                totals[row[label]] += row["count"]
            busiest[label] = set(sorted(totals, key=lambda value: (-totals[value], value))[: self.max_label_values])
        folded: dict[tuple[str, ...], float] = defaultdict(float)
        for row in rows:
            key = tuple(_label(row[label], busiest[label]) for label in ("action_type", "agent", "policy"))
            folded[(*key, row["label"])] += row["count"]
        for labels, value in sorted(folded.items()):
            family.add_metric(list(labels), value)
        return family

    def _containment(self) -> CounterMetricFamily:
        """Submissions refused (rate limited, over the pending cap, ...) or collapsed into a pending duplicate.

        Refusals write no request row, so their labels are bounded by their own busiest values.
        """
        family = CounterMetricFamily(
            "countersign_containment",
            "Submissions rate limited, refused over the pending cap, or collapsed into a pending duplicate, "
            "by agent, action type and kind.",
            labels=["agent", "action_type", "kind"],
        )
        rows = containment_counts()
        busiest: dict[str, set[str]] = {}
        for label in ("agent", "action_type"):
            totals: dict[str, int] = defaultdict(int)
            for row in rows:
                totals[row[label]] += row["count"]
            ranked = sorted(totals, key=lambda value: (-totals[value], value))
            busiest[label] = set(ranked[: self.max_label_values])
        folded: dict[tuple[str, ...], float] = defaultdict(float)
        for row in rows:
            key = (_label(row["agent"], busiest["agent"]), _label(row["action_type"], busiest["action_type"]))
            folded[(*key, row["kind"])] += row["count"]
        for labels, value in sorted(folded.items()):
            family.add_metric(list(labels), value)
        return family

    def _time_to_decision(self, label: str, column: str, fold: Callable[[str | None], str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "countersign_time_to_decision_seconds"
            if label == "action_type"
            else f"countersign_{label}_time_to_decision_seconds",
            f"Seconds from submission to a human decision, by {label}.",
            labels=[label],
        )
        aggregates = {
            f"le_{i}": Count("id", filter=Q(seconds_to_decide__lte=le)) for i, le in enumerate(DECISION_BUCKETS)
        }
        rows = Decision.objects.values(column).annotate(n=Count("id"), total=Sum("seconds_to_decide"), **aggregates)
        folded: dict[str, list[float]] = {}
        for row in rows.order_by():
            acc = folded.setdefault(fold(row[column]), [0.0] * (len(DECISION_BUCKETS) + 2))
            for i in range(len(DECISION_BUCKETS)):
                acc[i] += row[f"le_{i}"]
            acc[-2] += row["n"]
            acc[-1] += row["total"] or 0.0
        for value, acc in sorted(folded.items()):
            buckets = [(str(float(le)), acc[i]) for i, le in enumerate(DECISION_BUCKETS)]
            buckets.append(("+Inf", acc[-2]))
            family.add_metric([value], buckets, sum_value=acc[-1])
        return family


def metrics_access_allowed(request: HttpRequest) -> bool:
    """The bearer token must match COUNTERSIGN_METRICS_TOKEN. With no token configured the
    endpoint is open in development and closed in production (fail closed)."""
    expected = settings.COUNTERSIGN_METRICS_TOKEN
    if not expected:
        return not settings.COUNTERSIGN_PRODUCTION
    presented = bearer_token(request.headers.get("Authorization", "")) or ""
    return hmac.compare_digest(presented.encode(), expected.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        response = HttpResponse(
            "metrics need 'Authorization: Bearer <COUNTERSIGN_METRICS_TOKEN>'\n", status=401, content_type="text/plain"
        )
        if not settings.COUNTERSIGN_METRICS_TOKEN:
            response.status_code = 403
            response.content = b"metrics are disabled: set COUNTERSIGN_METRICS_TOKEN\n"
        else:
            response["WWW-Authenticate"] = 'Bearer realm="countersign-metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CountersignCollector(max_label_values=settings.COUNTERSIGN_METRICS_MAX_LABEL_VALUES))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
