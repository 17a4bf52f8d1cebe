"""Every write to an action request: submit, decide, cancel, expire, lapse.

Each status change follows one recipe: one transaction, the clock read once, a
conditional UPDATE whose row count says whether this caller won, then the
decision row, the audit event and the webhook outbox row in the same
transaction, and live events only after commit.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.canonical import canonical_hash as params_hash
from core.canonical import canonical_json, sha256_hex
from core.errors import IdempotencyConflict, InvalidInput, NotFound, PermissionRefused, ServiceError, TransitionRefused
from core.timefmt import isoformat
from policies.evaluation import RequestFacts, Verdict, evaluate, pattern_matches
from policies.selectors import policy_table_current

from . import realtime
from .binding import approval_token_matches, final_params_hash
from .models import (
    API_KEY_PREFIX,
    ActionRequest,
    ActionTypeSchema,
    Agent,
    AgentKey,
    AuditEvent,
    Decision,
    DecisionOutcome,
    Status,
    Vote,
    WebhookDelivery,
    generate_webhook_secret,
    hash_api_key,
)
from .notifications import queue_notifications_create
from .params_schema import params_problems, schema_problems
from .representation import action_request_as_agent_sees_it
from .selectors import action_request_get_for_agent, action_type_schemas, queue_card
from .webhooks import validate_outbound_url

STATUS_BY_MODE = {"auto": Status.ALLOWED, "log": Status.ALLOWED, "approve": Status.PENDING, "block": Status.BLOCKED}
WEBHOOK_EVENTS = {
    Status.APPROVED: "action.approved",
    Status.REJECTED: "action.rejected",
    Status.EXPIRED: "action.expired",
    Status.CANCELLED: "action.cancelled",
    Status.EXECUTED: "action.executed",
}
SWEEP_BATCH = 500
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    action_type: str
    params: dict[str, Any]
    summary: str
    evidence: list[dict[str, Any]]
    confidence: float | None = None
    context: dict[str, Any] | None = None
    callback_url: str = ""

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


def _audit(
    request: ActionRequest,
    *,
    kind: str,
    now: datetime,
    actor_kind: str,
    actor_label: str,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        request=request,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_kind=actor_kind,
        actor_label=actor_label,
        data=data or {},
        created_at=now,
    )


def _enqueue_webhook(request: ActionRequest, *, now: datetime) -> WebhookDelivery | None:
    event_type = WEBHOOK_EVENTS.get(Status(request.status))
    url = request.callback_url or request.agent.default_callback_url
    if event_type is None or not url:
        return None
    delivery = WebhookDelivery(
        request=request, event_type=event_type, url=url, payload={}, next_attempt_at=now, created_at=now
    )
    delivery.payload = {
        "id": str(delivery.id),
        "type": event_type,
        "timestamp": isoformat(now),
        "data": action_request_as_agent_sees_it(request),
    }
    delivery.save(force_insert=True)
    transaction.on_commit(lambda: _queue_webhook_delivery(delivery.id))
    return delivery


def _queue_webhook_delivery(delivery_id: Any) -> None:
    from .tasks import deliver_webhook  # tasks import services; import late to avoid the cycle

    try:
        deliver_webhook.delay(str(delivery_id))
    except Exception:
        # The broker is down: the row stays in the outbox and the periodic sweep sends it later.
        logger.warning("webhook %s left in the outbox: broker unavailable", delivery_id)


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


def action_request_submit(*, agent: Agent, submission: Submission, idempotency_key: str | None = None) -> SubmitResult:
    """Evaluate a proposed action against the policy table and record it.

    Invariant: at most one request per (agent, idempotency key), however many
    concurrent retries arrive; a replay with the same body returns the original,
    a different body is refused.
    """
    fingerprint = submission.fingerprint()
    if idempotency_key:
        existing = _find_replay(agent=agent, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            return SubmitResult(request=existing, created=False)

    verdict: Verdict = evaluate(
        table=policy_table_current(),
        request=RequestFacts(
            action_type=submission.action_type,
            params=submission.params,
            context=submission.context or {},
            confidence=submission.confidence,
            agent_name=agent.name,
            agent_tags=tuple(agent.tags or ()),
            # The agent's own scope and the scope of the key it authenticated with (set by the API's authentication).
            scopes=(tuple(agent.action_scopes or ()), tuple(getattr(agent, "key_scopes", ()) or ())),
        ),
    )
    try:
        with transaction.atomic():
            now = timezone.now()
            status = STATUS_BY_MODE[verdict.mode]
            request = ActionRequest.objects.create(
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
            _audit(
                request,
                kind="submitted",
                now=now,
                actor_kind="agent",
                actor_label=agent.name,
                to_status=status,
                data={"verdict": verdict.as_dict()},
            )
            if status == Status.PENDING:
                transaction.on_commit(lambda: realtime.publish_request_added(request))
                queue_notifications_create(request=request, kind="new", now=now)
    except IntegrityError:
        # A concurrent retry with the same key won the insert; hand back its request.
        if not idempotency_key:
            raise
        existing = _find_replay(agent=agent, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is None:
            raise
        return SubmitResult(request=existing, created=False)
    return SubmitResult(request=request, created=True)


def _refusal_for(request: ActionRequest, *, now: datetime, verb: str) -> TransitionRefused:
    if request.status == Status.PENDING and request.expires_at and request.expires_at <= now:
        return TransitionRefused(
            f"Too late to {verb}: this request expired at {isoformat(request.expires_at)}.",
            code="request_expired",
            details={"status": Status.EXPIRED, "expires_at": isoformat(request.expires_at)},
        )
    if request.status in {Status.APPROVED, Status.REJECTED, Status.EXECUTED, Status.LAPSED}:
        decision = Decision.objects.filter(request=request).first()
        by = decision.reviewer_username if decision else "another reviewer"
        return TransitionRefused(
            f"Already decided by {by}: this request was {decision.outcome if decision else request.status}.",
            code="already_decided",
            details={"status": request.status, "decided_by": by},
        )
    if request.status == Status.EXPIRED:
        return TransitionRefused(
            f"Too late to {verb}: this request expired at {isoformat(request.expires_at)}.",
            code="request_expired",
            details={"status": request.status},
        )
    if request.status == Status.CANCELLED:
        return TransitionRefused(
            f"Cannot {verb}: the agent cancelled this request.",
            code="request_cancelled",
            details={"status": request.status},
        )
    return TransitionRefused(
        f"Cannot {verb}: the request is {request.status}, not pending.",
        code="not_pending",
        details={"status": request.status},
    )


def action_request_decide(
    *,
    request_id: Any,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None = None,
    reason: str = "",
    note: str = "",
    seen_revision: int | None = None,
    reason_category: str = "",
) -> Decision:
    """Approve (possibly with edited params) or reject a pending request.

    Invariant: a request gets at most one decision, and only while it is pending
    and before its deadline, whatever the number of concurrent reviewers and
    whether or not the expiry sweep has run. A rejection always carries a known
    reason category and a reason; an approval carries no category.
    """
    reason = (reason or "").strip()
    if not approve and not reason:
        raise InvalidInput("A rejection needs a reason the agent can act on.", code="reason_required")
    reason_category = _reason_category(approve=approve, reason=reason, reason_category=reason_category)
    if final_params is not None and not isinstance(final_params, dict):
        raise InvalidInput(
            "Edited parameters must be a JSON object.",
            code="invalid_params",
            details={"errors": [{"path": "", "message": "Params must be a JSON object."}]},
        )

    try:
        request = ActionRequest.objects.select_related("agent").get(pk=request_id)
    except (ActionRequest.DoesNotExist, ValueError, ValidationError):
        raise NotFound(f"No action request {request_id}.") from None
    if not reviewer_may_see(reviewer=reviewer, request=request):
        # Routed to another group: to this reviewer the request does not exist.
        raise NotFound(f"No action request {request_id}.")
    if approve and request.agent.owner_id is not None and request.agent.owner_id == reviewer.pk:
        raise PermissionRefused(
            "You own the agent that asked: someone else must approve this request (separation of duties).",
            code="owner_cannot_approve",
        )
    if approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params):
        _check_edited_params(action_type=request.action_type, params=final_params)
    if request.required_approvals > 1:
        return _decide_by_quorum(
            request=request,
            reviewer=reviewer,
            approve=approve,
            final_params=final_params,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
        )
    with transaction.atomic():
        return _finalise_decision(
            request=request,
            now=timezone.now(),
            reviewer=reviewer,
            approve=approve,
            final_params=final_params,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
        )


def _check_edited_params(*, action_type: str, params: dict[str, Any]) -> None:
    """A reviewer's edit must satisfy the schema the agent registered for the action type, if any."""
    schema = action_type_schemas([action_type]).get(action_type)
    if schema is None:
        return
    problems = params_problems(schema, params)
    if problems:
        listed = "; ".join(f"{p['path'] or '(params)'}: {p['message']}" for p in problems[:5])
        raise InvalidInput(
            f"The edited parameters do not match the schema registered for {action_type}: {listed}",
            code="invalid_params",
            details={"errors": problems},
        )


def _reason_category(*, approve: bool, reason: str, reason_category: str) -> str:
    """The rejection category slug to record (settings.COUNTERSIGN_REJECT_REASONS); empty for an approval."""
    category = (reason_category or "").strip()
    known = [slug for slug, _ in settings.COUNTERSIGN_REJECT_REASONS]
    if approve:
        if category:
            raise InvalidInput(
                "An approval takes no reason category; send reason_category only with a rejection.",
                code="invalid_reason_category",
                details={"reason_category": category},
            )
        return ""
    if not category:
        # Older callers wrote the category as a prefix of the reason ("wrong_data: the amount is off").
        prefix, colon, _ = reason.partition(":")
        if colon and prefix.strip().lower() in known:
            return prefix.strip().lower()
        raise InvalidInput(
            f"A rejection needs a reason_category, one of: {', '.join(known)}.",
            code="reason_category_required",
            details={"valid": known},
        )
    if category not in known:
        raise InvalidInput(
            f"Unknown reason_category {category!r}; use one of: {', '.join(known)}.",
            code="invalid_reason_category",
            details={"reason_category": category, "valid": known},
        )
    return category


def reviewer_may_see(*, reviewer: AbstractBaseUser, request: ActionRequest) -> bool:
    """A request routed to a reviewer group is visible to, and decidable by, that group only."""
    if request.reviewer_group_id is None:
        return True
    return reviewer.groups.filter(pk=request.reviewer_group_id).exists()


def _decide_by_quorum(
    *,
    request: ActionRequest,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None,
    reason: str,
    reason_category: str,
    note: str,
    seen_revision: int | None,
) -> Decision | Vote:
    """Record one reviewer's vote; the vote that completes the quorum, or any rejection, decides.

    Voters on one request are serialised by a row lock (PostgreSQL) or by the
    IMMEDIATE write transaction (SQLite), so the approval count a voter reads is
    never stale; the final transition is still the one conditional UPDATE in
    _finalise_decision, so exactly one caller moves the request out of pending.
    """
    if approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params):
        raise InvalidInput(
            "Requests that need several approvals cannot be edited: every approver must see the same parameters.",
            code="edit_not_allowed_with_quorum",
        )
    with transaction.atomic():
        now = timezone.now()
        locked = (
            ActionRequest.objects.select_for_update()
            .select_related("agent")
            .filter(pk=request.pk, status=Status.PENDING, expires_at__gt=now)
            .first()
        )
        if locked is None:
            request.refresh_from_db()
            raise _refusal_for(request, now=now, verb="approve" if approve else "reject")
        if Vote.objects.filter(request=locked, reviewer=reviewer).exists():
            raise TransitionRefused(
                "You already voted on this request; another reviewer must add the next approval.",
                code="already_voted",
            )
        vote = Vote.objects.create(
            request=locked,
            reviewer=reviewer,
            reviewer_username=reviewer.get_username(),
            approve=approve,
            reason_category=reason_category,
            reason=reason,
            note=note or "",
            created_at=now,
        )
        approvals = Vote.objects.filter(request=locked, approve=True).count()
        if approve and approvals < locked.required_approvals:
            _audit(
                locked,
                kind="vote_approve",
                now=now,
                actor_kind="reviewer",
                actor_label=reviewer.get_username(),
                data={"approvals": approvals, "required": locked.required_approvals, "note": note},
            )
            transaction.on_commit(lambda: realtime.publish_request_updated(locked))
            return vote
        return _finalise_decision(
            request=locked,
            now=now,
            reviewer=reviewer,
            approve=approve,
            final_params=None,
            reason=reason,
            reason_category=reason_category,
            note=note,
            seen_revision=seen_revision,
            votes=list(Vote.objects.filter(request=locked).values_list("reviewer_username", "approve")),
        )


def _finalise_decision(
    *,
    request: ActionRequest,
    now: datetime,
    reviewer: AbstractBaseUser,
    approve: bool,
    final_params: dict[str, Any] | None,
    reason: str,
    note: str,
    seen_revision: int | None,
    votes: list[tuple[str, bool]] | None = None,
    reason_category: str = "",
) -> Decision:
    """The one final transition out of pending: a conditional UPDATE whose row count says who won.

    Call inside a transaction."""
    guard = ActionRequest.objects.filter(pk=request.pk, status=Status.PENDING, expires_at__gt=now)
    if seen_revision is not None:
        guard = guard.filter(revision=seen_revision)
    new_status = Status.APPROVED if approve else Status.REJECTED
    chosen_params = (final_params if final_params is not None else request.params) if approve else None
    approval_expires_at = now + timedelta(seconds=request.approval_ttl_seconds) if approve else None
    won = guard.update(
        status=new_status,
        decided_at=now,
        final_params=chosen_params,
        approval_expires_at=approval_expires_at,
        revision=F("revision") + 1,
    )
    if not won:
        request.refresh_from_db()
        if seen_revision is not None and request.status == Status.PENDING and request.expires_at > now:
            raise TransitionRefused(
                "This request changed since you opened it; reload it and decide again.",
                code="request_changed",
                details={"seen_revision": seen_revision, "current_revision": request.revision},
            )
        raise _refusal_for(request, now=now, verb="approve" if approve else "reject")

    request.refresh_from_db()
    edited = bool(
        approve and final_params is not None and canonical_json(final_params) != canonical_json(request.params)
    )
    decision = Decision.objects.create(
        request=request,
        outcome=DecisionOutcome.APPROVED if approve else DecisionOutcome.REJECTED,
        edited=edited,
        reviewer=reviewer,
        reviewer_username=reviewer.get_username(),
        reason_category=reason_category,
        reason=reason,
        note=note or "",
        original_params=request.params,
        final_params=chosen_params,
        request_snapshot=queue_card(request),
        verdict={
            "mode": request.mode,
            "risk": request.risk,
            "policy_id": request.policy_id,
            "policy_pattern": request.policy_pattern,
            "policy_version": request.policy_version,
            "reason": request.verdict_reason,
        },
        decided_at=now,
        seconds_to_decide=(now - request.created_at).total_seconds(),
    )
    _audit(
        request,
        kind="edited_and_approved" if edited else ("approved" if approve else "rejected"),
        now=now,
        actor_kind="reviewer",
        actor_label=reviewer.get_username(),
        from_status=Status.PENDING,
        to_status=new_status,
        data={
            "reason_category": reason_category,
            "reason": reason,
            "note": note,
            "edited": edited,
            "params_hash": params_hash(chosen_params) if approve else None,
            **({"votes": [{"reviewer": r, "approve": a} for r, a in votes]} if votes else {}),
        },
    )
    _enqueue_webhook(request, now=now)
    by = reviewer.get_username()
    transaction.on_commit(lambda: realtime.publish_request_left_queue(request, by=by))
    return decision


def action_request_cancel(*, agent: Agent, request_id: Any) -> ActionRequest:
    """The agent withdraws a pending request. Invariant: only pending, unexpired requests are cancelled."""
    request = action_request_get_for_agent(agent=agent, request_id=request_id)
    with transaction.atomic():
        now = timezone.now()
        won = ActionRequest.objects.filter(pk=request.pk, status=Status.PENDING, expires_at__gt=now).update(
            status=Status.CANCELLED, decided_at=now, revision=F("revision") + 1
        )
        request.refresh_from_db()
        if not won:
            raise _refusal_for(request, now=now, verb="cancel")
        _audit(
            request,
            kind="cancelled",
            now=now,
            actor_kind="agent",
            actor_label=agent.name,
            from_status=Status.PENDING,
            to_status=Status.CANCELLED,
        )
        _enqueue_webhook(request, now=now)
        transaction.on_commit(lambda: realtime.publish_request_left_queue(request, by=agent.name))
    return request


def _escalate_one(request_id: Any, *, now: datetime) -> bool:
    """A pending request whose policy says ``escalate`` goes, once, to the escalation group with a fresh deadline."""
    with transaction.atomic():
        request = (
            ActionRequest.objects.select_related("agent")
            .filter(pk=request_id, status=Status.PENDING, expires_at__lte=now, on_expiry="escalate", escalated_at=None)
            .first()
        )
        if request is None:
            return False
        previous = ActionRequest(pk=request.pk, reviewer_group_id=request.reviewer_group_id, status=request.status)
        won = ActionRequest.objects.filter(
            pk=request.pk, status=Status.PENDING, expires_at__lte=now, escalated_at=None
        ).update(
            escalated_at=now,
            reviewer_group_id=request.escalation_group_id,
            expires_at=now + timedelta(seconds=max(request.pending_ttl_seconds, 1)),
            # A fresh deadline in another group's queue: that group gets its own reminder.
            reminded_at=None,
            revision=F("revision") + 1,
        )
        if not won:
            return False
        request.refresh_from_db()
        _audit(
            request,
            kind="escalated",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.PENDING,
            to_status=Status.PENDING,
            data={
                "from_group_id": previous.reviewer_group_id,
                "to_group_id": request.reviewer_group_id,
                "expires_at": isoformat(request.expires_at),
            },
        )
        queue_notifications_create(request=request, kind="new", now=now)

        def publish() -> None:
            realtime.publish_request_left_queue(previous, by="escalation")
            realtime.publish_request_added(request)

        transaction.on_commit(publish)
    return True


def _expire_one(request_id: Any, *, now: datetime) -> bool:
    if _escalate_one(request_id, now=now):
        return False
    with transaction.atomic():
        won = ActionRequest.objects.filter(pk=request_id, status=Status.PENDING, expires_at__lte=now).update(
            status=Status.EXPIRED, decided_at=now, revision=F("revision") + 1
        )
        if not won:
            return False
        request = ActionRequest.objects.select_related("agent").get(pk=request_id)
        _audit(
            request,
            kind="expired",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.PENDING,
            to_status=Status.EXPIRED,
            data={"expires_at": isoformat(request.expires_at)},
        )
        _enqueue_webhook(request, now=now)
        transaction.on_commit(lambda: realtime.publish_request_left_queue(request, by="expiry"))
    return True


def _lapse_one(request_id: Any, *, now: datetime) -> bool:
    with transaction.atomic():
        won = ActionRequest.objects.filter(pk=request_id, status=Status.APPROVED, approval_expires_at__lte=now).update(
            status=Status.LAPSED, revision=F("revision") + 1
        )
        if not won:
            return False
        request = ActionRequest.objects.get(pk=request_id)
        _audit(
            request,
            kind="approval_lapsed",
            now=now,
            actor_kind="system",
            actor_label="expiry",
            from_status=Status.APPROVED,
            to_status=Status.LAPSED,
            data={"approval_expires_at": isoformat(request.approval_expires_at)},
        )
        transaction.on_commit(lambda: realtime.publish_request_changed(request))
    return True


def action_requests_expire_due(*, now: datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Move pending requests past their deadline to expired, and unused approvals past theirs to lapsed.

    This only makes time visible (status, live queue, webhook): deciding after the
    deadline is already impossible because every decision checks the clock itself.
    """
    now = now or timezone.now()
    expired = 0
    due = ActionRequest.objects.filter(status=Status.PENDING, expires_at__lte=now).order_by("expires_at")
    for request_id in list(due.values_list("pk", flat=True)[:batch]):
        expired += _expire_one(request_id, now=now)
    lapsing = ActionRequest.objects.filter(status=Status.APPROVED, approval_expires_at__lte=now)
    for request_id in list(lapsing.values_list("pk", flat=True)[:batch]):
        _lapse_one(request_id, now=now)
    return expired


def action_request_settle_time(request: ActionRequest) -> ActionRequest:
    """Apply any deadline that has passed to this one request, so readers never see a stale 'pending'."""
    now = timezone.now()
    if request.status == Status.PENDING and request.expires_at and request.expires_at <= now:
        _expire_one(request.pk, now=now)
        request.refresh_from_db()
    elif request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        _lapse_one(request.pk, now=now)
        request.refresh_from_db()
    return request


def agent_key_issue(*, agent: Agent) -> str:
    """Create a new API key for an agent and return it. Only its hash is stored: show it once."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    AgentKey.objects.create(agent=agent, prefix=raw_key[:10], key_hash=hash_api_key(raw_key))
    return raw_key


@transaction.atomic
def agent_create(
    *, name: str, owner: AbstractBaseUser | None = None, default_callback_url: str = ""
) -> tuple[Agent, str]:
    if Agent.objects.filter(name=name).exists():
        raise InvalidInput(f"An agent named {name!r} already exists.", code="agent_exists")
    if default_callback_url:
        validate_outbound_url(default_callback_url)
    agent = Agent.objects.create(name=name, owner=owner, default_callback_url=default_callback_url)
    return agent, agent_key_issue(agent=agent)


def agent_key_revoke(*, agent: Agent, prefix: str) -> int:
    return agent.keys.filter(prefix=prefix, revoked_at__isnull=True).update(revoked_at=timezone.now())


def agent_webhook_secret_rotate(*, agent: Agent) -> str:
    agent.webhook_secret = generate_webhook_secret()
    agent.save(update_fields=["webhook_secret"])
    return agent.webhook_secret


def _refuse_unless_schema_writable(*, agent: Agent, action_type: str, existing: ActionTypeSchema | None) -> None:
    scopes = [tuple(agent.action_scopes or ()), tuple(getattr(agent, "key_scopes", ()) or ())]
    for allowed in scopes:
        if allowed and not any(pattern_matches(pattern, action_type) for pattern in allowed):
            raise PermissionRefused(
                f"This agent key may only request {', '.join(allowed)}; {action_type!r} is outside its scope.",
                code="out_of_scope",
            )
    if existing is not None and existing.registered_by_id not in (None, agent.pk):
        raise PermissionRefused(
            f"Another agent registered the schema of {action_type!r}; only it (or an admin) may change it.",
            code="schema_owned_by_another_agent",
        )


def action_type_schema_put(*, agent: Agent, action_type: str, schema: Any) -> tuple[ActionTypeSchema, bool]:
    """Register or replace the params schema of an action type; returns (row, created).

    Invariant: a stored schema is valid draft 2020-12, describes an object and refers to
    nothing outside itself; only the agent that registered it (or an admin) replaces it.
    """
    problems = schema_problems(schema)
    if problems:
        problem = problems[0]
        raise InvalidInput(
            f"This is not a schema we can use: {problem['path'] or '(schema)'}: {problem['message']}",
            code="invalid_schema",
            details=problem,
        )
    with transaction.atomic():
        existing = ActionTypeSchema.objects.select_for_update().filter(action_type=action_type).first()
        _refuse_unless_schema_writable(agent=agent, action_type=action_type, existing=existing)
        if existing is None:
            try:
                with transaction.atomic():
                    return ActionTypeSchema.objects.create(
                        action_type=action_type, params_schema=schema, registered_by=agent
                    ), True
            except IntegrityError:
                # A concurrent first registration won; the caller may retry to replace it.
                raise TransitionRefused(
                    f"The schema of {action_type!r} was registered at the same moment; read it and retry.",
                    code="schema_conflict",
                ) from None
        existing.params_schema = schema
        existing.registered_by = agent
        existing.save(update_fields=["params_schema", "registered_by", "updated_at"])
        return existing, False


def action_type_schema_delete(*, agent: Agent, action_type: str) -> None:
    """Remove an action type's params schema: edits are then checked only for being a JSON object."""
    with transaction.atomic():
        existing = ActionTypeSchema.objects.select_for_update().filter(action_type=action_type).first()
        if existing is None:
            raise NotFound(f"No schema is registered for {action_type!r}.")
        _refuse_unless_schema_writable(agent=agent, action_type=action_type, existing=existing)
        existing.delete()


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
        _audit(
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
                pk=request.pk, status=request.status, execution_started_at__isnull=True
            )
            if request.status == Status.APPROVED:
                guard = guard.filter(approval_expires_at__gt=now)
            if guard.update(execution_started_at=now, execution_run_id=run_id):
                request.execution_started_at = now
                request.execution_run_id = run_id
                _audit(
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
        _lapse_one(request.pk, now=now)
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
                guard = guard.filter(approval_expires_at__gt=now)
            won = guard.update(
                status=Status.EXECUTED,
                executed_at=now,
                execution_status=outcome,
                execution_result=result,
                revision=F("revision") + 1,
            )
            if won:
                request.refresh_from_db()
                _audit(
                    request,
                    kind="executed",
                    now=now,
                    actor_kind="agent",
                    actor_label=agent.name,
                    from_status=from_status,
                    to_status=Status.EXECUTED,
                    data={"outcome": outcome, "params_hash": reported_params_hash},
                )
                _enqueue_webhook(request, now=now)
                transaction.on_commit(lambda: realtime.publish_request_changed(request))
                return request
        # Another report won the race, or the approval lapsed in between: say which.
        request.refresh_from_db()
        refusal = _execution_refusal(
            request, now=now, approval_token=approval_token, reported_params_hash=reported_params_hash
        ) or TransitionRefused("This action was already reported.", code="already_reported")
    if request.status == Status.APPROVED and request.approval_expires_at and request.approval_expires_at <= now:
        _lapse_one(request.pk, now=now)
        request.refresh_from_db()
    raise _execution_violation(request, agent=agent, now=now, refusal=refusal, outcome=outcome)


BATCH_LIMIT = 100


def action_requests_decide_batch(
    *,
    reviewer: AbstractBaseUser,
    items: list[tuple[Any, int | None]],
    approve: bool,
    reason: str = "",
    reason_category: str = "",
    note: str = "",
) -> list[dict[str, Any]]:
    """Decide several requests of one action type as the reviewer confirmed them.

    Each request is decided in its own transaction with the revision the reviewer saw,
    so one that changed, expired or was decided by someone else is refused on its own
    while the rest go through. Batch approval never edits params.
    """
    if len(items) > BATCH_LIMIT:
        raise InvalidInput(f"At most {BATCH_LIMIT} requests per batch.", code="batch_too_large")
    ids = [request_id for request_id, _ in items]
    try:
        action_types = set(
            ActionRequest.objects.filter(pk__in=ids).values_list("action_type", flat=True).distinct().order_by()
        )
    except (ValueError, ValidationError):
        raise InvalidInput("Every item needs the id of an action request.", code="invalid_items") from None
    if len(action_types) > 1:
        raise InvalidInput(
            "A batch holds requests of one action type only: select cards of the same type "
            f"(this selection mixes {', '.join(sorted(action_types))}).",
            code="mixed_action_types",
        )
    results: list[dict[str, Any]] = []
    for request_id, revision in items:
        try:
            decision = action_request_decide(
                request_id=request_id,
                reviewer=reviewer,
                approve=approve,
                reason=reason,
                reason_category=reason_category,
                note=note,
                seen_revision=revision,
            )
        except InvalidInput:
            # The reviewer's input is wrong for every item alike (e.g. a rejection without a
            # reason); it is checked before any write, so the first item stops the whole batch.
            raise
        except ServiceError as exc:
            results.append({"id": str(request_id), "ok": False, "code": exc.code, "message": exc.message})
        else:
            results.append({"id": str(request_id), "ok": True, "status": decision.request.status})
    return results
