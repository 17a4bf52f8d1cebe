"""Usage read from the database for policy conditions (``policies.usage``): one indexed query per usage call.

What counts is ``COUNTERSIGN_USAGE_COUNTS``:

- ``allowed`` (default): every request of the window that was not refused: let through by
  policy, approved, run, or still waiting for a reviewer (a pending request holds its share of
  the budget until it is rejected, expires or is cancelled, so waiting requests cannot overrun it);
- ``approved``: let through by policy or approved by a human (pending ones do not count yet);
- ``executed``: reported as run successfully.

The request being evaluated is not in the database yet: a budget condition adds its own amount
(``usage.sum("params.amount", "24h") + params.amount > 500``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, FloatField, Q
from django.db.models.expressions import RawSQL

from policies.usage import UsageQuery

from .models import ActionRequest, Status

COUNTED_STATUSES = {
    "allowed": (Status.ALLOWED, Status.PENDING, Status.APPROVED, Status.EXECUTED, Status.LAPSED),
    "approved": (Status.ALLOWED, Status.APPROVED, Status.EXECUTED, Status.LAPSED),
    "executed": (Status.EXECUTED,),
}


def _counted() -> Q:
    counts = settings.COUNTERSIGN_USAGE_COUNTS
    if counts == "executed":
        return Q(status=Status.EXECUTED, execution_status="succeeded")
    return Q(status__in=COUNTED_STATUSES[counts])


def _numeric_sum_sql(path: tuple[str, ...]) -> tuple[str, list[Any]]:
    """SUM of the JSON number at ``path`` in params; strings, booleans and missing values add nothing."""
    if connection.vendor == "postgresql":
        return (
            "COALESCE(SUM(CASE WHEN jsonb_typeof(params #> %s) = 'number' THEN (params #>> %s)::float8 END), 0)",
            [list(path), list(path)],
        )
    json_path = "$." + ".".join(f'"{key}"' for key in path)
    return (
        "COALESCE(SUM(CASE WHEN json_type(params, %s) IN ('integer', 'real') THEN json_extract(params, %s) END), 0)",
        [json_path, json_path],
    )


class _RawAggregate(RawSQL):
    """A SUM written in SQL (Django has no JSON-number-only sum that runs on both databases)."""

    contains_aggregate = True


class DatabaseUsage:
    """Answers usage queries for one submission (an agent, an action type, a moment)."""

    def __init__(self, *, agent_id: Any, action_type: str, now: datetime) -> None:
        self.agent_id = agent_id
        self.action_type = action_type
        self.now = now

    def _rows(self, query: UsageQuery):
        rows = ActionRequest.objects.filter(
            _counted(),
            action_type=self.action_type,
            created_at__gt=self.now - timedelta(seconds=query.window_seconds),
            created_at__lte=self.now,
        )
        return rows if query.scope == "all" else rows.filter(agent_id=self.agent_id)

    def usage(self, query: UsageQuery) -> float:
        rows = self._rows(query)
        if query.kind == "count":
            return float(rows.aggregate(n=Count("pk"))["n"])
        sql, params = _numeric_sum_sql(query.field_path)
        return float(rows.aggregate(total=_RawAggregate(sql, params, output_field=FloatField()))["total"] or 0)
