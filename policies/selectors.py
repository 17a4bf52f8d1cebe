from __future__ import annotations

import threading

from django.conf import settings

from .evaluation import CompiledPolicy, DefaultRule, PolicyTable
from .models import Policy, PolicyVersion

_lock = threading.Lock()
_cached: PolicyTable | None = None


def policy_table_version_current() -> int:
    return PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0


def policy_table_build(*, version: int) -> PolicyTable:
    compiled = [
        CompiledPolicy(
            id=p.id,
            action_pattern=p.action_pattern,
            mode=p.mode,
            priority=p.priority,
            pending_ttl_seconds=p.pending_ttl_seconds,
            approval_ttl_seconds=p.approval_ttl_seconds,
            risk=p.risk,
            description=p.description,
        )
        for p in Policy.objects.filter(enabled=True)
    ]
    default = DefaultRule(
        mode=settings.COUNTERSIGN_DEFAULT_MODE,
        pending_ttl_seconds=settings.COUNTERSIGN_DEFAULT_PENDING_TTL_SECONDS,
        approval_ttl_seconds=settings.COUNTERSIGN_DEFAULT_APPROVAL_TTL_SECONDS,
    )
    return PolicyTable.build(compiled, default=default, version=version)


def policy_table_current() -> PolicyTable:
    """The compiled table for the newest version.

    Every process keeps one compiled snapshot and checks the version number (one
    indexed single-row query) on each call, so a change saved by any process is
    seen by every web server and worker on its next evaluation, never later.
    """
    global _cached
    version = policy_table_version_current()
    table = _cached
    if table is not None and table.version == version:
        return table
    with _lock:
        if _cached is None or _cached.version != version:
            _cached = policy_table_build(version=version)
        return _cached


def policy_table_cache_clear() -> None:
    global _cached
    _cached = None
