from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from .evaluation import CompiledPolicy, DefaultRule, PolicyTable
from .models import Policy, PolicyVersion

_lock = threading.Lock()
_cached: PolicyTable | None = None


def policy_table_version_current() -> int:
    return PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0


def policy_table_version_sql() -> str:
    """A scalar SQL subquery for the newest version number (NULL before the first), for a caller
    that reads it inside a statement of its own (see approvals.services.pauses.submission_gate_pass)."""
    q = connection.ops.quote_name
    return f"(SELECT MAX({q('number')}) FROM {q(PolicyVersion._meta.db_table)})"  # noqa: S608


def _default_rule() -> DefaultRule:
    return DefaultRule(
        mode=settings.COUNTERSIGN_DEFAULT_MODE,
        pending_ttl_seconds=settings.COUNTERSIGN_DEFAULT_PENDING_TTL_SECONDS,
        approval_ttl_seconds=settings.COUNTERSIGN_DEFAULT_APPROVAL_TTL_SECONDS,
    )


def policy_compile(p: Policy) -> CompiledPolicy:
    return CompiledPolicy(
        id=p.id,
        action_pattern=p.action_pattern,
        mode=p.mode,
        priority=p.priority,
        pending_ttl_seconds=p.pending_ttl_seconds,
        approval_ttl_seconds=p.approval_ttl_seconds,
        risk=p.risk,
        description=p.description,
        condition=p.condition,
        required_approvals=p.required_approvals,
        reviewer_group_id=p.reviewer_group_id,
        on_expiry=p.on_expiry,
        escalation_group_id=p.escalation_group_id,
        collapse_duplicates=p.collapse_duplicates,
        sample_rate=p.sample_rate,
    )


def policy_table_build(*, version: int) -> PolicyTable:
    compiled = [policy_compile(p) for p in Policy.objects.filter(enabled=True)]
    return PolicyTable.build(compiled, default=_default_rule(), version=version)


def policy_table_from_rows(rows: list[dict[str, Any]], *, version: int = 0) -> PolicyTable:
    """Compile a table that is not (yet) in the database: a draft, an import, an old version.

    Rows without an id get negative ids in list order, so ordering ties still break predictably.
    """
    names = {r.get(g) for r in rows for g in ("reviewer_group", "escalation_group") if r.get(g)}
    group_ids = dict(Group.objects.filter(name__in=names).values_list("name", "id")) if names else {}
    compiled = []
    for index, row in enumerate(rows):
        if not row.get("enabled", True):
            continue
        defaults = Policy()
        row_id = row.get("id")
        compiled.append(
            CompiledPolicy(
                id=row_id if isinstance(row_id, int) else -(index + 1),
                action_pattern=row["action_pattern"],
                mode=row["mode"],
                priority=row.get("priority", 0),
                pending_ttl_seconds=row.get("pending_ttl_seconds", defaults.pending_ttl_seconds),
                approval_ttl_seconds=row.get("approval_ttl_seconds", defaults.approval_ttl_seconds),
                risk=row.get("risk") or "",
                description=row.get("description") or "",
                condition=row.get("condition") or "",
                required_approvals=row.get("required_approvals", 1),
                reviewer_group_id=group_ids.get(row.get("reviewer_group")),
                on_expiry=row.get("on_expiry", "reject"),
                escalation_group_id=group_ids.get(row.get("escalation_group")),
                collapse_duplicates=row.get("collapse_duplicates"),
                sample_rate=row.get("sample_rate") or 0.0,
            )
        )
    return PolicyTable.build(compiled, default=_default_rule(), version=version)


def policy_table_current(*, version: int | None = None) -> PolicyTable:
    """The compiled table for the newest version.

    Every process keeps one compiled snapshot and checks the version number (one
    indexed single-row query) on each call, so a change saved by any process is
    seen by every web server and worker on its next evaluation, never later. A caller
    that has just read the newest number itself (``policy_table_version_sql``) passes it.
    """
    global _cached
    if version is None:
        version = policy_table_version_current()
    table = _cached
    if table is not None and table.version == version:
        return table
    with _lock:
        if _cached is None or _cached.version != version:
            _cached = policy_table_build(version=version)
        return _cached


def policy_table_cached() -> PolicyTable | None:
    """The compiled table this process holds, without asking whether it is still the newest (None
    before the first evaluation). A caller acting on it must check its version in the statement
    that writes the outcome (see approvals.services.pauses.submission_write_if_gates_open)."""
    return _cached


def policy_table_cache_clear() -> None:
    global _cached
    _cached = None
