"""Submitting a proposed action: the policy verdict, the request row, and its first effects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.canonical import canonical_json, sha256_hex
from core.errors import IdempotencyConflict, NotAuthenticated, TooManyRequests
from core.inserts import new_row
from core.ratelimit import RateDecision
from policies.evaluation import RISK_BY_MODE, RequestFacts, Verdict, evaluate
from policies.selectors import policy_table_cached, policy_table_current

from ..models import (
    PAUSED_ACTION_TYPE,
    PAUSED_AGENT,
    ActionRequest,
    Agent,
    AuditEvent,
    ContainmentKind,
    Pause,
    Status,
)
from ..notifications import queue_notifications_create
from ..selectors import agent_for_api_key_confirmed, agent_reads_same
from ..usage import DatabaseUsage
from ._effects import announce_added, first_audit_event, first_audit_written, insert_with_first_audit
from .after_review import after_review_for
from .containment import (
    containment_count_add,
    duplicate_key_for,
    pending_admission,
    submission_rate_check,
    usage_serialise,
)
from .pauses import submission_gate_pass, submission_write_if_gates_open

STATUS_BY_MODE = {"auto": Status.ALLOWED, "log": Status.ALLOWED, "approve": Status.PENDING, "block": Status.BLOCKED}


@dataclass(frozen=True)
class Submission:
    action_type: str
    params: dict[str, Any]
    summary: str
    evidence: list[dict[str, Any]]
    confidence: float | None = None
    context: dict[str, Any] | None = None
    callback_url: str = ""
    # W3C trace context (core.tracing.traceparent_normalised). Not part of the fingerprint: each retry
    # of one submission is its own span in the agent's trace.
    traceparent: str = ""

    def fingerprint(self) -> str:
        return sha256_hex(
            canonical_json(
                {
                    "action_type": self.action_type,
                    "params": self.params,
                    "summary": self.summary,
                    "evidence": self.evidence,
                    "confidence": self.confidence,
                    "context": self.context or {},
                    "callback_url": self.callback_url,
                }
            )
        )


@dataclass(frozen=True)
class SubmitResult:
    request: ActionRequest
    created: bool
    # The pending request this submission repeated (returned instead of a new card).
    duplicate: bool = False
    # The rate limit this submission was counted against (None: a replay, or no limit applies).
    rate: RateDecision | None = None


def _find_replay(*, agent: Agent, idempotency_key: str, fingerprint: str) -> ActionRequest | None:
    existing = ActionRequest.objects.filter(agent=agent, idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body. "
            "Send the original body to get the original request back, or use a new key for a new request.",
            details={"idempotency_key": idempotency_key, "original_request_id": str(existing.id)},
        )
    return existing


def agent_version_of(context: dict[str, Any] | None) -> str:
    """``context.agent_version`` when it is a short string (the release gate compares versions), else ""."""
    version = (context or {}).get("agent_version")
    return version.strip() if isinstance(version, str) and len(version.strip()) <= 100 else ""


def _paused_verdict(verdict: Verdict, pause: Pause) -> Verdict:
    """Blocked by the pause, whatever the policy table said (the table's verdict is kept in the audit row)."""
    reason = PAUSED_AGENT if pause.agent_id else PAUSED_ACTION_TYPE
    return replace(
        verdict,
        mode="block",
        reason=reason,
        reason_code=reason,
        risk=RISK_BY_MODE["block"],
        policy_id=None,
        policy_pattern=None,
        skipped=(),
        required_approvals=1,
        reviewer_group_id=None,
        escalation_group_id=None,
    )


def _submitted_rows(
    *,
    agent: Agent,
    submission: Submission,
    verdict: Verdict,
    table_verdict: Verdict,
    pause: Pause | None,
    status: str,
    now: datetime,
    idempotency_key: str | None,
    fingerprint: str,
    duplicate_key: str,
) -> tuple[ActionRequest, AuditEvent]:
    """The new request's row as the verdict made it, and its first audit event (neither written yet)."""
    request_id = uuid.uuid4()
    request = new_row(
        ActionRequest,
        id=request_id,
        after_review=after_review_for(
            request_id=request_id, status=status, mode=verdict.mode, sample_rate=verdict.sample_rate
        ),
        agent=agent,
        action_type=submission.action_type,
        params=submission.params,
        evidence=submission.evidence,
        summary=submission.summary,
        confidence=submission.confidence,
        context=submission.context or {},
        callback_url=submission.callback_url,
        idempotency_key=idempotency_key or None,
        request_hash=fingerprint,
        duplicate_key=duplicate_key,
        traceparent=submission.traceparent,
        agent_version=agent_version_of(submission.context),
        status=status,
        mode=verdict.mode,
        risk=verdict.risk,
        policy_id=verdict.policy_id,
        policy_pattern=verdict.policy_pattern or "",
        policy_version=verdict.table_version,
        verdict_reason=verdict.reason,
        approval_ttl_seconds=verdict.approval_ttl_seconds,
        pending_ttl_seconds=verdict.pending_ttl_seconds,
        required_approvals=verdict.required_approvals,
        reviewer_group_id=verdict.reviewer_group_id,
        on_expiry=verdict.on_expiry,
        escalation_group_id=verdict.escalation_group_id,
        expires_at=now + timedelta(seconds=verdict.pending_ttl_seconds) if status == Status.PENDING else None,
        final_params=submission.params if status == Status.ALLOWED else None,
    )
    event = first_audit_event(
        request,
        kind="submitted",
        now=now,
        actor_kind="agent",
        actor_label=agent.name,
        to_status=status,
        data=_submitted_data(verdict, table_verdict, pause),
    )
    return request, event


def _submitted_data(verdict: Verdict, table_verdict: Verdict, pause: Pause | None) -> dict[str, Any]:
    """The ``submitted`` audit event's data: the verdict, and under a pause the table's own verdict and the pause."""
    if pause is None:
        return {"verdict": verdict.as_dict()}
    return {
        "verdict": verdict.as_dict(),
        "table_verdict": table_verdict.as_dict(),
        "pause": {"id": pause.pk, "kind": pause.kind, "reason": pause.reason, "by": pause.paused_by_label},
    }


def _submit_in_one_round_trip(
    *,
    agent: Agent,
    submission: Submission,
    facts: RequestFacts,
    idempotency_key: str | None,
    fingerprint: str,
    rate: RateDecision | None,
) -> SubmitResult | None:
    """A submission allowed or blocked by the policy table this process has compiled, written in one
    round trip with no transaction of its own (``pauses.submission_write_if_gates_open``: the gates,
    then one statement that reads them and writes both rows).

    Same invariants as the full path: the rows are written only if no pause covers the submission
    and the table is still the newest, both read once the gates are held. None, having written
    nothing, when it does not apply: not PostgreSQL, no table compiled yet, a verdict that reads
    usage, holds the request for review or counts a budget, a covering pause or a newer table. The
    caller then takes the full path, which decides again from what it reads.
    """
    table = policy_table_cached()
    if connection.vendor != "postgresql" or table is None or table.usage_queries(submission.action_type):
        return None
    verdict = evaluate(table=table, request=facts, usage=None)
    status = STATUS_BY_MODE[verdict.mode]
    if status == Status.PENDING or verdict.budget_exceeded:
        return None
    request, event = _submitted_rows(
        agent=agent,
        submission=submission,
        verdict=verdict,
        table_verdict=verdict,
        pause=None,
        status=status,
        now=timezone.now(),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        duplicate_key="",
    )
    # Inside a caller's transaction the write has a savepoint: a lost idempotency race leaves it usable.
    if not submission_write_if_gates_open(request, event, policy_version=table.version, agent=agent):
        return None
    first_audit_written(request, event)
    return SubmitResult(request=request, created=True, rate=rate)


def _request_facts(agent: Agent, submission: Submission) -> RequestFacts:
    return RequestFacts(
        action_type=submission.action_type,
        params=submission.params,
        context=submission.context or {},
        confidence=submission.confidence,
        agent_name=agent.name,
        agent_tags=tuple(agent.tags or ()),
        # The agent's own scope and the scope of the key it authenticated with (set by the API's authentication).
        scopes=(tuple(agent.action_scopes or ()), tuple(getattr(agent, "key_scopes", ()) or ())),
    )


def _agent_confirmed(agent: Agent) -> Agent:
    """``agent`` as the database has it now, if this process remembered it (approvals.selectors.agent_keys);
    refused (401) when its key was revoked or the agent disabled since."""
    confirmed = agent_for_api_key_confirmed(agent)
    if confirmed is None:
        raise NotAuthenticated(
            "This API key is revoked, or its agent is disabled.",
            headers={"WWW-Authenticate": 'Bearer realm="countersign"'},
        )
    return confirmed


def _rate_checked(agent: Agent, action_type: str, now: datetime) -> tuple[Agent, RateDecision | None]:
    """The rate limits applied to one submission: the agent to go on with, and the decision.

    A remembered agent refused by its limits is read again first: a key revoked meanwhile is told
    so rather than to wait, and limits raised meanwhile apply at once. Only a refusal that stands
    is counted (``ContainmentKind.RATE_LIMITED``).
    """
    try:
        return agent, submission_rate_check(agent=agent, action_type=action_type, now=now)
    except TooManyRequests:
        confirmed = _agent_confirmed(agent)
        if agent_reads_same(confirmed, agent):
            containment_count_add(agent=agent, action_type=action_type, kind=ContainmentKind.RATE_LIMITED, now=now)
            raise
    try:
        return confirmed, submission_rate_check(agent=confirmed, action_type=action_type, now=now)
    except TooManyRequests:
        containment_count_add(agent=confirmed, action_type=action_type, kind=ContainmentKind.RATE_LIMITED, now=now)
        raise


def action_request_submit(*, agent: Agent, submission: Submission, idempotency_key: str | None = None) -> SubmitResult:
    """Evaluate a proposed action against the policy table and record it.

    Invariants: at most one request per (agent, idempotency key), however many concurrent
    retries arrive; a replay with the same body returns the original (and is never rate
    limited), a different body is refused. A submission over the agent's or its key's rate
    limit writes nothing. A pending request is admitted under a lock on its agent: never more
    than the agent's cap pending at once, and a submission identical to a live pending one
    (where its policy collapses duplicates) returns that one instead, whatever new idempotency
    key it carries. A submission covered by an open pause is blocked; one racing a pause is
    either blocked or pending before the pause starts (which cancels it).
    """
    fingerprint = submission.fingerprint()
    if idempotency_key:
        existing = _find_replay(agent=agent, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            _agent_confirmed(agent)
            return SubmitResult(request=existing, created=False)

    now = timezone.now()
    agent, rate = _rate_checked(agent, submission.action_type, now)
    try:
        written = _submit_in_one_round_trip(
            agent=agent,
            submission=submission,
            facts=_request_facts(agent, submission),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            rate=rate,
        )
        if written is not None:
            return written
        agent = _agent_confirmed(agent)
        facts = _request_facts(agent, submission)
        with transaction.atomic():
            # The gates are held until commit: a pause covering this submission waits for its row (see services.pauses).
            gate = submission_gate_pass(agent_id=agent.pk, action_type=submission.action_type)
            table = policy_table_current(version=gate.policy_version)
            usage_queries = table.usage_queries(submission.action_type)
            usage = None
            if usage_queries:
                # A verdict that reads usage is reached under the usage lock, inside the transaction that records it.
                usage_serialise(agent_id=agent.pk, action_type=submission.action_type, queries=usage_queries)
                usage = DatabaseUsage(
                    agent_id=agent.pk, action_type=submission.action_type, now=timezone.now(), queries=usage_queries
                )
            table_verdict = evaluate(table=table, request=facts, usage=usage)
            pause = gate.pause
            verdict = table_verdict if pause is None else _paused_verdict(table_verdict, pause)
            now = timezone.now()
            status = STATUS_BY_MODE[verdict.mode]
            duplicate_key = ""
            if status == Status.PENDING:
                duplicate_key = duplicate_key_for(
                    action_type=submission.action_type, params=submission.params, context=submission.context
                )
                # A new idempotency key does not make an identical retry a new card: agents in a
                # loop (and our client, which keys every call) would otherwise bury the queue.
                collapse = verdict.collapse_duplicates is not False
                duplicate = pending_admission(agent=agent, duplicate_key=duplicate_key if collapse else "", now=now)
                if duplicate is not None:
                    containment_count_add(
                        agent=agent, action_type=submission.action_type, kind=ContainmentKind.COLLAPSED, now=now
                    )
                    return SubmitResult(request=duplicate, created=False, duplicate=True, rate=rate)
            request, event = _submitted_rows(
                agent=agent,
                submission=submission,
                verdict=verdict,
                table_verdict=table_verdict,
                pause=pause,
                status=status,
                now=now,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                duplicate_key=duplicate_key,
            )
            insert_with_first_audit(request, event)
            if verdict.budget_exceeded:
                containment_count_add(
                    agent=agent, action_type=submission.action_type, kind=ContainmentKind.BUDGET_EXCEEDED, now=now
                )
            if status == Status.PENDING:
                announce_added(request)
                queue_notifications_create(request=request, kind="new", now=now)
    except TooManyRequests:
        # Counted outside the refused transaction, which wrote nothing.
        containment_count_add(
            agent=agent, action_type=submission.action_type, kind=ContainmentKind.TOO_MANY_PENDING, now=now
        )
        raise
    except IntegrityError:
        # A concurrent retry with the same key won the insert; hand back its request.
        if not idempotency_key:
            raise
        existing = _find_replay(agent=agent, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is None:
            raise
        return SubmitResult(request=existing, created=False, rate=rate)
    return SubmitResult(request=request, created=True, rate=rate)
