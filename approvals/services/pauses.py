"""The kill switch: staff pause an agent, or an action type for every agent, and resume it.

While a pause is open, submissions it covers are recorded as blocked (``agent_paused`` /
``action_type_paused``) whatever the policy table says (see ``submission``). Starting a pause,
in one transaction: the pause row; every pending request it covers cancelled through the one
cancellation transition (audit row, webhook outbox row, the card leaves the open queues); every
approval it covers whose run has not started revoked for good (its start and its report are
refused with ``approval_revoked``; a run already started is still reported). Resuming closes
the pause row and nothing else: cancelled requests stay cancelled, revoked approvals stay revoked.

The race with submissions: a submission holds the shared side of two gates for its whole
transaction, its agent's and its action type's; a pause holds the exclusive side of its target's
gate. So a pause starts only once every submission in flight that it covers has committed (its
pending rows are then visible to the pause, which cancels them), and such a submission that
begins after the pause sees the pause (it is blocked). No submission can be left pending under
an open pause, and a pause never holds up the submissions it does not cover (PostgreSQL; on
SQLite every writing transaction is serialised anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.errors import InvalidInput, NotFound, TransitionRefused
from core.inserts import insert_new_if
from core.locks import transaction_lock, transaction_lock_then_read
from policies.selectors import policy_table_version_sql

from ..models import ACTION_TYPE_REGEX, ActionRequest, Agent, AuditEvent, Pause, Status
from ..selectors import agent_key_unchanged_sql, pause_as_json
from ._effects import announce_changed, announce_pause_changed, audit
from ._finalise import finalise_cancellation

REASON_MAX_CHARS = 1000


def _agent_gate(agent_id: Any) -> str:
    return f"countersign.pause.agent.{agent_id}"


def _action_type_gate(action_type: str) -> str:
    return f"countersign.pause.action_type.{action_type}"


@cache
def _covering_pause_sql(vendor: str) -> str:
    """A scalar subquery: the id of the open pause covering an agent and an action type (the agent's own first)."""
    q = connection.ops.quote_name
    agent_column = q(Pause._meta.get_field("agent").column)
    # Only the models' names and placeholders: no value is ever formatted into it.
    return (
        f"(SELECT {q('id')} FROM {q(Pause._meta.db_table)} WHERE {q('resumed_at')} IS NULL "  # noqa: S608
        f"AND ({agent_column} = %s OR {q('action_type')} = %s) ORDER BY {agent_column} IS NULL LIMIT 1)"
    )


@cache
def _gate_read_sql(vendor: str) -> str:
    """The covering pause's id and the policy version: written once per database."""
    return f"SELECT {_covering_pause_sql(vendor)}, {policy_table_version_sql()}"


def _covering_pause_params(agent_id: Any, action_type: str) -> list[Any]:
    return [Pause._meta.get_field("agent").get_db_prep_value(agent_id, connection), action_type]


@dataclass(frozen=True)
class GatePassed:
    """What a submission reads once it holds its gates."""

    # The open pause that covers it (the agent's own before its action type's), if any.
    pause: Pause | None
    # The policy table's newest version (0 before the first).
    policy_version: int


def submission_gate_pass(*, agent_id: Any, action_type: str) -> GatePassed:
    """A submission's side of the gates (many at once, but never while a pause that covers it is
    starting), then what it must read once inside: the pause that covers it and the policy version.

    The hot path of every submission, so the lock and the read are one round trip and the read is
    written by hand (core.locks.transaction_lock_then_read: the read still sees every pause that
    committed before the gates let it in). Call inside the submission's transaction.
    """
    [(pause_id, version)] = transaction_lock_then_read(
        _agent_gate(agent_id),
        _action_type_gate(action_type),
        exclusive=False,
        sql=_gate_read_sql(connection.vendor),
        params=_covering_pause_params(agent_id, action_type),
    )
    pause = None if pause_id is None else Pause.objects.select_related("agent").get(pk=pause_id)
    return GatePassed(pause=pause, policy_version=version or 0)


def submission_write_if_gates_open(
    request: ActionRequest, first_event: AuditEvent, *, policy_version: int, agent: Agent
) -> bool:
    """Write a submission and its first audit event in one round trip, if no pause covers it,
    ``policy_version`` is still the policy table's newest version and neither ``agent`` nor its key
    changed since they were read (``agent.read``, approvals.selectors.agent_keys); else write nothing (False).

    The same gates as ``submission_gate_pass`` (their shared side, held until the write commits),
    and the same read after them, folded into the INSERT's own condition, so that a submission
    whose verdict needs nothing else costs no BEGIN, no separate read and no COMMIT. PostgreSQL only.
    """
    agent_unchanged, agent_params = agent_key_unchanged_sql(agent)
    return insert_new_if(
        request,
        first_event,
        condition=(
            f"{_covering_pause_sql(connection.vendor)} IS NULL AND COALESCE({policy_table_version_sql()}, 0) = %s "
            f"AND {agent_unchanged}"
        ),
        params=[*_covering_pause_params(request.agent_id, request.action_type), policy_version, *agent_params],
        shared_locks=(_agent_gate(request.agent_id), _action_type_gate(request.action_type)),
    )


@dataclass(frozen=True)
class PauseOutcome:
    pause: Pause
    cancelled: int
    revoked: int


@dataclass(frozen=True)
class _Actor:
    user: AbstractBaseUser | None
    label: str

    @property
    def kind(self) -> str:
        return "staff" if self.user is not None else "system"


def _actor(by: AbstractBaseUser | None, by_label: str) -> _Actor:
    if by is not None:
        return _Actor(user=by, label=by.get_username())
    if not by_label.strip():
        raise InvalidInput("Say who pauses or resumes (a user, or a label such as the command's name).")
    return _Actor(user=None, label=by_label.strip()[:200])


def _checked_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "A reason is required to pause: say why (reviewers see it on the queue page).", code="reason_required"
        )
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidInput(f"Keep the reason under {REASON_MAX_CHARS} characters.", code="reason_too_long")
    return reason


def _agent_named(name: str) -> Agent:
    agent = Agent.objects.filter(name=name).first()
    if agent is None:
        raise NotFound(f"No agent is named {name!r}.", code="agent_not_found")
    return agent


def _checked_action_type(action_type: str) -> str:
    if not isinstance(action_type, str) or not re.match(ACTION_TYPE_REGEX, action_type):
        raise InvalidInput(
            "Name the action type as agents submit it: lower-case letters, digits and _ . : - (no globs).",
            code="invalid_action_type",
        )
    return action_type


def _already_paused(existing: Pause) -> TransitionRefused:
    return TransitionRefused(
        f"The {existing.kind_label} {existing.target!r} is already paused (by {existing.paused_by_label}); "
        "resume it first to pause it again with another reason.",
        code="already_paused",
        details={"pause": pause_as_json(existing)},
    )


def _revoke_unstarted_approvals(covered: Any, *, pause: Pause, now: datetime, actor: _Actor) -> int:
    revoked = 0
    unstarted = covered.filter(
        status=Status.APPROVED,
        execution_started_at__isnull=True,
        approval_revoked_at__isnull=True,
        approval_expires_at__gt=now,
    )
    for request in unstarted.order_by("approval_expires_at", "id"):
        # Races the agent's start claim on the same row: exactly one of the two conditional UPDATEs wins.
        won = ActionRequest.objects.filter(
            pk=request.pk, status=Status.APPROVED, execution_started_at__isnull=True, approval_revoked_at__isnull=True
        ).update(approval_revoked_at=now, approval_revoked_by=pause, revision=F("revision") + 1)
        if not won:
            continue
        request.refresh_from_db()
        audit(
            request,
            kind="approval_revoked",
            now=now,
            actor_kind=actor.kind,
            actor_label=actor.label,
            from_status=Status.APPROVED,
            to_status=Status.APPROVED,
            data={"pause_id": pause.pk, "pause": pause.kind, "reason": pause.reason},
        )
        announce_changed(request)
        revoked += 1
    return revoked


def _pause(*, target: Q, pause: Pause, actor: _Actor) -> PauseOutcome:
    gate = _agent_gate(pause.agent_id) if pause.agent_id else _action_type_gate(pause.action_type)
    with transaction.atomic():
        # Every submission in flight that this pause covers commits before this returns; none starts until
        # this commits.
        transaction_lock(gate, exclusive=True)
        now = timezone.now()
        existing = Pause.objects.filter(target, resumed_at__isnull=True).select_related("agent").first()
        if existing is not None:
            raise _already_paused(existing)
        pause.paused_at = now
        pause.paused_by = actor.user
        pause.paused_by_label = actor.label
        try:
            with transaction.atomic():
                pause.save(force_insert=True)
        except IntegrityError:
            # Only without the gate (it always holds on PostgreSQL and SQLite): the constraint still says no.
            raise _already_paused(Pause.objects.filter(target, resumed_at__isnull=True).first() or pause) from None
        if pause.agent_id:
            covered = ActionRequest.objects.filter(agent_id=pause.agent_id)
        else:
            covered = ActionRequest.objects.filter(action_type=pause.action_type)
        data = {"pause_id": pause.pk, "pause": pause.kind, "reason": pause.reason}
        cancelled = 0
        pending = covered.filter(status=Status.PENDING, expires_at__gt=now).select_related("agent")
        for request in pending.order_by("expires_at", "id"):
            if finalise_cancellation(
                request=request, now=now, actor_kind=actor.kind, actor_label=actor.label, data=data
            ):
                cancelled += 1
        revoked = _revoke_unstarted_approvals(covered, pause=pause, now=now, actor=actor)
        announce_pause_changed(pause)
    return PauseOutcome(pause=pause, cancelled=cancelled, revoked=revoked)


def _resume(*, target: Q, what: str, actor: _Actor) -> Pause:
    with transaction.atomic():
        now = timezone.now()
        pause = Pause.objects.filter(target, resumed_at__isnull=True).select_related("agent").first()
        won = pause is not None and Pause.objects.filter(pk=pause.pk, resumed_at__isnull=True).update(
            resumed_at=now, resumed_by=actor.user, resumed_by_label=actor.label
        )
        if not won:
            raise NotFound(f"The {what} is not paused: there is nothing to resume.", code="not_paused")
        pause.refresh_from_db()
        announce_pause_changed(pause)
    return pause


def agent_pause(
    *, agent_name: str, reason: str, by: AbstractBaseUser | None = None, by_label: str = ""
) -> PauseOutcome:
    """Pause one agent: its submissions are blocked, its pending requests cancelled, its unstarted approvals revoked.

    Invariant: at most one open pause per agent; after this commits, the agent has no pending
    request and no approval it may still start, and every submission of it is blocked until resumed.
    """
    actor = _actor(by, by_label)
    reason = _checked_reason(reason)
    agent = _agent_named(agent_name)
    return _pause(target=Q(agent=agent), pause=Pause(agent=agent, reason=reason), actor=actor)


def agent_resume(*, agent_name: str, by: AbstractBaseUser | None = None, by_label: str = "") -> Pause:
    """Lift the agent's open pause: its new submissions meet the policy table again. Nothing else changes."""
    actor = _actor(by, by_label)
    agent = _agent_named(agent_name)
    return _resume(target=Q(agent=agent), what=f"agent {agent.name!r}", actor=actor)


def action_type_pause(
    *, action_type: str, reason: str, by: AbstractBaseUser | None = None, by_label: str = ""
) -> PauseOutcome:
    """Pause one action type for every agent: the same effects as ``agent_pause``, on that action type.

    Invariant: at most one open pause per action type; after this commits, no request of that
    type is pending or startable, and every submission of it is blocked until resumed.
    """
    actor = _actor(by, by_label)
    reason = _checked_reason(reason)
    action_type = _checked_action_type(action_type)
    return _pause(
        target=Q(action_type=action_type, agent__isnull=True),
        pause=Pause(action_type=action_type, reason=reason),
        actor=actor,
    )


def action_type_resume(*, action_type: str, by: AbstractBaseUser | None = None, by_label: str = "") -> Pause:
    """Lift the action type's open pause. Nothing else changes."""
    actor = _actor(by, by_label)
    action_type = _checked_action_type(action_type)
    return _resume(
        target=Q(action_type=action_type, agent__isnull=True), what=f"action type {action_type!r}", actor=actor
    )
