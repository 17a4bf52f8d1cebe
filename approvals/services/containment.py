"""Containing a runaway agent at submission: rate limits, a cap on pending requests, duplicate retries.

- Rate limits: a sliding window of one minute per agent and per API key, kept in Redis
  (``core.ratelimit``; both buckets in one round trip). When Redis is unreachable each process
  limits in its own memory, and says so once in the log.
- The pending cap: an agent may have at most N requests waiting for a reviewer. Checked under a
  lock on the agent (its row ``FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions take
  the database's write lock up front, see config/settings.py), so concurrent submissions never
  overshoot it.
- Duplicate retries: a pending submission identical to one of the agent's live pending requests
  (action type, canonical params, the context keys that identify the task) returns that request.
  Found through ``ActionRequest.duplicate_key`` under the same lock, so two identical submissions
  at once make one card.

Refusals write no request row; they (and collapsed duplicates) are counted in ``ContainmentCount``,
one upserted row per day, agent, action type and kind.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from core.canonical import canonical_json, sha256_hex
from core.errors import TooManyRequests
from core.locks import transaction_lock
from core.ratelimit import RateDecision, SlidingWindowLimiter
from policies.usage import UsageQuery

from ..models import ActionRequest, Agent, ContainmentCount, Status

WINDOW_SECONDS = 60

_limiter_lock = threading.Lock()
_limiters: dict[str, SlidingWindowLimiter] = {}


def _limiter() -> SlidingWindowLimiter:
    url = settings.COUNTERSIGN_RATE_LIMIT_REDIS_URL
    limiter = _limiters.get(url)
    if limiter is None:
        with _limiter_lock:
            limiter = _limiters.setdefault(url, SlidingWindowLimiter(url, prefix="countersign:submit"))
    return limiter


# --- the limits that apply to an agent ----------------------------------------------------------------------


def agent_rate_limits(agent: Agent) -> tuple[int, int]:
    """(per agent, per key) submissions per minute; 0 is no limit. A key's limit is never looser than its agent's."""
    per_agent = agent.rate_limit_per_minute
    if per_agent is None:
        per_agent = settings.COUNTERSIGN_RATE_LIMIT_PER_MINUTE
    per_key = agent.key_rate_limit_per_minute
    if per_key is None:
        per_key = settings.COUNTERSIGN_KEY_RATE_LIMIT_PER_MINUTE or 0
    if per_agent and (not per_key or per_key > per_agent):
        # A key's own bucket at the agent's limit would refuse nothing the agent's bucket lets through.
        per_key = 0
    return per_agent, per_key


def agent_max_pending(agent: Agent) -> int:
    """How many requests ``agent`` may have waiting for a reviewer; 0 is no cap."""
    return settings.COUNTERSIGN_MAX_PENDING_PER_AGENT if agent.max_pending is None else agent.max_pending


# --- rate limits --------------------------------------------------------------------------------------------


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_seconds)
    return headers


def submission_rate_check(*, agent: Agent, action_type: str, now: datetime) -> RateDecision | None:
    """Count one submission against the agent's and its key's windows; refuse it (429) when either is full.

    Returns the decision (for the RateLimit-* headers), or None when no limit applies. One Redis
    round trip whatever the number of buckets; nothing is counted against either when refused.
    The caller records a refusal that stands (``ContainmentKind.RATE_LIMITED``): one under limits
    read from memory may yet be lifted by the agent read again.
    """
    per_agent, per_key = agent_rate_limits(agent)
    limits: dict[str, int] = {}
    if per_agent:
        limits[f"agent:{agent.pk}"] = per_agent
    key_id = getattr(agent, "key_id", None)  # set by the API's authentication
    if per_key and key_id is not None:
        limits[f"key:{agent.pk}:{key_id}"] = per_key
    if not limits:
        return None
    decision = _limiter().hit_all(limits, window_seconds=WINDOW_SECONDS)
    if decision.allowed:
        return decision
    whose = "this API key" if decision.bucket.startswith("key:") else "this agent"
    raise TooManyRequests(
        f"Too many submissions: {whose} may submit {decision.limit} per minute. "
        f"Retry after {decision.retry_after_seconds} s; a loop resubmitting the same action is better stopped.",
        code="rate_limited",
        details={
            "limit": decision.limit,
            "window_seconds": WINDOW_SECONDS,
            "scope": "key" if whose == "this API key" else "agent",
            "retry_after_seconds": decision.retry_after_seconds,
        },
        headers=rate_limit_headers(decision),
    )


# --- the pending cap and duplicates -------------------------------------------------------------------------


def duplicate_key_for(*, action_type: str, params: dict, context: dict | None) -> str:
    """What makes two submissions the same retry: action type, canonical params, the task-identifying context."""
    context = context or {}
    task = {key: context[key] for key in settings.COUNTERSIGN_DUPLICATE_CONTEXT_KEYS if key in context}
    return sha256_hex(canonical_json({"action_type": action_type, "params": params, "task": task}))


def pending_admission(*, agent: Agent, duplicate_key: str, now: datetime) -> ActionRequest | None:
    """Under a lock on the agent: the live pending request this submission duplicates, or None if it may
    become a new pending request; raises ``too_many_pending`` (429) when the agent is at its cap.

    Call inside the submission's transaction, before the insert: the lock is held until it commits,
    so concurrent submissions of one agent are admitted one at a time. ``duplicate_key`` empty: no
    collapsing.
    """
    # Not needed on SQLite, whose IMMEDIATE transactions already hold the database's write lock.
    if connection.vendor == "postgresql":
        Agent.objects.select_for_update().filter(pk=agent.pk).values_list("pk", flat=True).first()
    live = ActionRequest.objects.filter(agent=agent, status=Status.PENDING, expires_at__gt=now)
    if duplicate_key:
        duplicate = live.filter(duplicate_key=duplicate_key).order_by("created_at").first()
        if duplicate is not None:
            return duplicate
    cap = agent_max_pending(agent)
    if cap:
        pending = live.count()
        if pending >= cap:
            raise TooManyRequests(
                f"This agent already has {pending} requests waiting for a reviewer (its cap is {cap}). "
                "Wait for decisions, or cancel requests it no longer needs, before submitting more.",
                code="too_many_pending",
                details={"pending": pending, "max_pending": cap},
            )
    return None


# --- budgets: usage read in policy conditions --------------------------------------------------------------


def usage_serialise(*, agent_id: Any, action_type: str, queries: tuple[UsageQuery, ...]) -> None:
    """Hold, until commit, the lock that makes reading usage and recording this submission one step.

    Without it, 16 submissions at once would all read the same usage and all pass a budget of 10.
    Per (agent, action type), or per action type when a condition reads every agent's usage.
    SQLite needs nothing: its IMMEDIATE transactions already run one writer at a time.
    """
    scope = "all" if any(query.scope == "all" for query in queries) else str(agent_id)
    transaction_lock(f"usage:{scope}:{action_type}", exclusive=True)


# --- counting -----------------------------------------------------------------------------------------------


def containment_count_add(*, agent: Agent, action_type: str, kind: str, now: datetime) -> None:
    """Add one to today's count of ``kind`` for this agent and action type: one upsert, whoever else counts."""
    table = connection.ops.quote_name(ContainmentCount._meta.db_table)
    agent_id = ContainmentCount._meta.get_field("agent").get_db_prep_value(agent.pk, connection)
    # The same statement on SQLite (3.24+) and PostgreSQL; Django's ORM has no increment-on-conflict.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, agent_id, action_type, kind, count) VALUES (%s, %s, %s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (day, agent_id, action_type, kind) DO UPDATE SET count = {table}.count + 1",
            [now.date(), agent_id, action_type[:200], str(kind)],
        )
