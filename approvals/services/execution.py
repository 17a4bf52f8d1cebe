"""The agent's one run of an approved (or allowed) action: claimed before, reported after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import InvalidInput, PermissionRefused, ServiceError, TransitionRefused
from core.timefmt import isoformat

from ..binding import approval_token_matches, final_params_hash
from ..models import ActionRequest, Agent, Status
from ..selectors import action_request_get_for_agent
from ._effects import announce_changed, audit, webhook_enqueue
from .deadlines import approval_lapse

EXECUTION_OUTCOMES = ("succeeded", "failed")


def _execution_refusal(
    request: ActionRequest, *, now: datetime, approval_token: str | None, reported_params_hash: str | None
) -> ServiceError | None:
    """Why this execution report must be refused, or None if it may be recorded."""
    if request.status == Status.EXECUTED:
        return TransitionRefused(
            "This action was already reported as executed; an approval covers one execution only.",
            code="already_reported",
            details={"status": request.status, "executed_at": isoformat(request.executed_at)},
        )
    if request.approval_revoked_at is not None and request.status == Status.APPROVED:
        return TransitionRefused(
            f"This approval was revoked at {isoformat(request.approval_revoked_at)}: staff paused this agent or "
            "action type before the run started. Do not run the action; once resumed, submit it again.",
            code="approval_revoked",
            details={"status": request.status, "approval_revoked_at": isoformat(request.approval_revoked_at)},
        )
    if request.status == Status.LAPSED or (
        request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now
    ):
        return TransitionRefused(
            f"The approval lapsed at {isoformat(request.approval_expires_at)}: do not run the action; "
            "submit it again for a fresh decision.",
            code="approval_expired",
            details={"status": request.status, "approval_expires_at": isoformat(request.approval_expires_at)},
        )
    if request.status not in {Status.APPROVED, Status.ALLOWED}:
        return TransitionRefused(
            f"This request was never approved (it is {request.status}): there is no execution to report.",
            code="not_approved",
            details={"status": request.status},
        )
    if request.status == Status.APPROVED and not approval_token_matches(request, approval_token):
        return PermissionRefused(
            "Send the approval_token from the approval response; this one is missing or does not match.",
            code="invalid_approval_token",
            details={"status": request.status},
        )
    expected = final_params_hash(request)
    if (request.status == Status.APPROVED or reported_params_hash) and reported_params_hash != expected:
        return TransitionRefused(
            "params_hash does not match the approved final params: run exactly the final_params of the "
            "approval (SHA-256 of their canonical JSON is final_params_hash).",
            code="params_mismatch",
            details={"expected_params_hash": expected, "reported_params_hash": reported_params_hash},
        )
    return None


def _execution_violation(
    request: ActionRequest, *, agent: Agent, now: datetime, refusal: ServiceError, outcome: str
) -> ServiceError:
    # Its own transaction, committed before the refusal is raised: the caller's error must not erase the trail.
    with transaction.atomic():
        audit(
            request,
            kind="violation",
            now=now,
            actor_kind="agent",
            actor_label=agent.name,
            from_status=request.status,
            data={"violation": refusal.code, "reported_outcome": outcome, **refusal.details},
        )
    return refusal


def _start_refusal(
    request: ActionRequest, *, now: datetime, approval_token: str | None, reported_params_hash: str | None
) -> ServiceError | None:
    refusal = _execution_refusal(
        request, now=now, approval_token=approval_token, reported_params_hash=reported_params_hash
    )
    if refusal is None and request.execution_started_at is not None:
        started = isoformat(request.execution_started_at)
        return TransitionRefused(
            f"Execution of this action already started at {started} (another process or a retry of the "
            "same tool call): do not run it again.",
            code="execution_already_started",
            details={"status": request.status, "execution_started_at": started},
        )
    return refusal


def _is_own_claim(
    request: ActionRequest, *, now: datetime, run_id: str, approval_token: str | None, params_hash: str | None
) -> bool:
    """The run was claimed already, by this very caller (same run id, still a valid claim)."""
    return bool(
        run_id
        and request.execution_started_at is not None
        and request.execution_run_id == run_id
        and _execution_refusal(request, now=now, approval_token=approval_token, reported_params_hash=params_hash)
        is None
    )


def action_request_start_execution(
    *, agent: Agent, request_id: Any, approval_token: str | None, params_hash: str | None, run_id: str = ""
) -> ActionRequest:
    """Claim the one run of an approved (or allowed) action, before running it.

    Invariant: execution_started_at is set at most once, by a conditional UPDATE whose row
    count names the single winner across processes; the same checks as the execution report
    apply (token, final params' hash, before approval_expires_at), and every refused start is
    kept as a violation in the audit trail. A caller that names its run (``run_id``) and
    repeats its own claim (its first answer was lost) is told the run is still its own.
    """
    request = action_request_get_for_agent(agent=agent, request_id=request_id)
    now = timezone.now()
    if _is_own_claim(request, now=now, run_id=run_id, approval_token=approval_token, params_hash=params_hash):
        return request
    refusal = _start_refusal(request, now=now, approval_token=approval_token, reported_params_hash=params_hash)
    if refusal is None:
        with transaction.atomic():
            guard = ActionRequest.objects.filter(
                pk=request.pk,
                status=request.status,
                execution_started_at__isnull=True,
                approval_revoked_at__isnull=True,
            )
            if request.status == Status.APPROVED:
                guard = guard.filter(approval_expires_at__gt=now)
            if guard.update(execution_started_at=now, execution_run_id=run_id):
                request.execution_started_at = now
                request.execution_run_id = run_id
                audit(
                    request,
                    kind="execution_started",
                    now=now,
                    actor_kind="agent",
                    actor_label=agent.name,
                    from_status=request.status,
                    data={"params_hash": params_hash},
                )
                return request
        # Another start (or a report, or the lapse) won between our read and our UPDATE: say which.
        request.refresh_from_db()
        if _is_own_claim(request, now=now, run_id=run_id, approval_token=approval_token, params_hash=params_hash):
            return request
        refusal = _start_refusal(
            request, now=now, approval_token=approval_token, reported_params_hash=params_hash
        ) or TransitionRefused("Execution of this action already started.", code="execution_already_started")
    if request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        approval_lapse(request.pk, now=now)
        request.refresh_from_db()
    raise _execution_violation(request, agent=agent, now=now, refusal=refusal, outcome="start")


def action_request_report_execution(
    *,
    agent: Agent,
    request_id: Any,
    outcome: str,
    result: Any = None,
    approval_token: str | None = None,
    reported_params_hash: str | None = None,
) -> ActionRequest:
    """Record the agent's one report of running an approved (or allowed) action.

    Invariant: a request moves to executed at most once, only from approved (with
    the approval token, the final params' hash, before approval_expires_at) or
    from allowed; every refused report is kept as a violation in the audit trail.
    """
    if outcome not in EXECUTION_OUTCOMES:
        raise InvalidInput("status must be 'succeeded' or 'failed'.", code="invalid_execution_status")
    request = action_request_get_for_agent(agent=agent, request_id=request_id)
    now = timezone.now()
    refusal = _execution_refusal(
        request, now=now, approval_token=approval_token, reported_params_hash=reported_params_hash
    )
    if refusal is None:
        with transaction.atomic():
            from_status = request.status
            guard = ActionRequest.objects.filter(pk=request.pk, status=from_status)
            if from_status == Status.APPROVED:
                # A revoked approval was never started (the pause only revokes those): its report is refused.
                guard = guard.filter(approval_expires_at__gt=now, approval_revoked_at__isnull=True)
            won = guard.update(
                status=Status.EXECUTED,
                executed_at=now,
                execution_status=outcome,
                execution_result=result,
                revision=F("revision") + 1,
            )
            if won:
                # The guard held the status, and only a status change moves an approved or allowed
                # row's revision: the row in hand plus what the UPDATE set is the row now.
                request.status = Status.EXECUTED
                request.executed_at = now
                request.execution_status = outcome
                request.execution_result = result
                request.revision += 1
                audit(
                    request,
                    kind="executed",
                    now=now,
                    actor_kind="agent",
                    actor_label=agent.name,
                    from_status=from_status,
                    to_status=Status.EXECUTED,
                    data={"outcome": outcome, "params_hash": reported_params_hash},
                )
                webhook_enqueue(request, now=now)
                announce_changed(request)
                return request
        # Another report won the race, or the approval lapsed in between: say which.
        request.refresh_from_db()
        refusal = _execution_refusal(
            request, now=now, approval_token=approval_token, reported_params_hash=reported_params_hash
        ) or TransitionRefused("This action was already reported.", code="already_reported")
    if request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        approval_lapse(request.pk, now=now)
        request.refresh_from_db()
    raise _execution_violation(request, agent=agent, now=now, refusal=refusal, outcome=outcome)
