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

from policies.usage import UsageQuery

from .models import ActionRequest, Status

COUNTED_STATUSES = {
    "allowed": (Status.ALLOWED, Status.PENDING, Status.APPROVED, Status.EXECUTED, Status.LAPSED),
    "approved": (Status.ALLOWED, Status.APPROVED, Status.EXECUTED, Status.LAPSED),
    "executed": (Status.EXECUTED,),
}


def _counted_sql() -> tuple[str, list[Any]]:
    counts = settings.COUNTERSIGN_USAGE_COUNTS
    if counts == "executed":
        return "status = %s AND execution_status = %s", [Status.EXECUTED.value, "succeeded"]
    statuses = [status.value for status in COUNTED_STATUSES[counts]]
    return f"status IN ({', '.join(['%s'] * len(statuses))})", statuses


def _number_at(path: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The JSON number at ``path`` in params, or NULL for a string, a boolean or nothing."""
    if connection.vendor == "postgresql":
        return "CASE WHEN jsonb_typeof(params #> %s) = 'number' THEN (params #>> %s)::float8 END", [
            list(path),
            list(path),
        ]
    json_path = "$." + ".".join(f'"{key}"' for key in path)
    return "CASE WHEN json_type(params, %s) IN ('integer', 'real') THEN json_extract(params, %s) END", [
        json_path,
        json_path,
    ]


class DatabaseUsage:
    """Answers the usage queries of one submission (an agent, an action type, a moment).

    The first question reads every query the table may ask for this action type in one
    statement (one indexed range scan over the longest window), so a verdict costs one round
    trip to the database however many usage calls its conditions make.
    """

    def __init__(self, *, agent_id: Any, action_type: str, now: datetime, queries: tuple[UsageQuery, ...]) -> None:
        self.agent_id = agent_id
        self.action_type = action_type
        self.now = now
        self.queries = queries
        self.answers: dict[UsageQuery, float] | None = None

    def usage(self, query: UsageQuery) -> float:
        if self.answers is None or query not in self.answers:
            queries = self.queries if query in self.queries else (*self.queries, query)
            self.answers = self._read(queries)
        return self.answers[query]

    def _read(self, queries: tuple[UsageQuery, ...]) -> dict[UsageQuery, float]:
        adapt = connection.ops.adapt_datetimefield_value
        agent_id = ActionRequest._meta.get_field("agent").get_db_prep_value(self.agent_id, connection)
        columns: list[str] = []
        params: list[Any] = []
        for query in queries:
            conditions = ["created_at > %s"]
            params.append(adapt(self.now - timedelta(seconds=query.window_seconds)))
            if query.scope == "agent":
                conditions.append("agent_id = %s")
                params.append(agent_id)
            when = " AND ".join(conditions)
            if query.kind == "count":
                columns.append(f"COUNT(CASE WHEN {when} THEN 1 END)")
            else:
                number, number_params = _number_at(query.field_path)
                columns.append(f"COALESCE(SUM(CASE WHEN {when} THEN {number} END), 0)")
                params.extend(number_params)
        counted, counted_params = _counted_sql()
        where = ["action_type = %s", "created_at > %s", "created_at <= %s", counted]
        where_params: list[Any] = [
            self.action_type,
            adapt(self.now - timedelta(seconds=max(query.window_seconds for query in queries))),
            adapt(self.now),
            *counted_params,
        ]
        if all(query.scope == "agent" for query in queries):
            where.append("agent_id = %s")  # narrows the scan to this agent's rows (usage_by_agent)
            where_params.append(agent_id)
        table = connection.ops.quote_name(ActionRequest._meta.db_table)
        sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)}"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, *where_params])
            row = cursor.fetchone()
        return {query: float(value or 0) for query, value in zip(queries, row, strict=True)}
