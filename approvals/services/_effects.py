"""What every transition writes beside the status change, and what it tells after commit.

The audit row and the agent's webhook outbox row are written in the transition's own
transaction, so they exist exactly when the change does; live events go out only after
commit, so nobody is told about a change that then rolled back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from core.dispatch import enqueue_each_on_commit
from core.inserts import insert_new, new_row
from core.timefmt import isoformat
from core.tracing import tracing_enabled

from .. import realtime
from ..audit_chain import audit_event_hash
from ..models import ActionRequest, AuditEvent, Pause, Status, WebhookDelivery
from ..notifications import slack_messages_refresh
from ..representation import action_request_as_agent_sees_it
from ..tracing import trace_event

WEBHOOK_EVENTS = {
    Status.APPROVED: "action.approved",
    Status.REJECTED: "action.rejected",
    Status.EXPIRED: "action.expired",
    Status.CANCELLED: "action.cancelled",
    Status.EXECUTED: "action.executed",
}


def audit(
    request: ActionRequest,
    *,
    kind: str,
    now: datetime,
    actor_kind: str,
    actor_label: str,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
    along: Sequence[Model] = (),
) -> AuditEvent:
    """Append one event to ``request``'s audit hash chain, in the caller's transaction.

    ``along``: new rows of the same change (a decision), INSERTed before the event in its round
    trip (``core.inserts.insert_new``: no save signals).

    Invariant: a request's events hold positions 1, 2, 3… with no gap or repeat, each event's
    ``prev_hash`` is the hash of the one before, and the request row's head (``audit_length``,
    ``audit_head``) names the last. The head moves by compare-and-swap on ``audit_length``: one
    small UPDATE when ``request`` is current, as it is after the transition's own conditional
    UPDATE. If another transaction appended since ``request`` was read, the UPDATE changes no
    row; the head is then read again under the row lock and the swap cannot fail. The UPDATE's
    row lock (PostgreSQL) or the IMMEDIATE write transaction (SQLite) holds every other
    appender to this request back until commit, so two never take the same position.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit() must run inside the transaction of the change it records (transaction.atomic).")
    event = _event(
        request,
        kind=kind,
        now=now,
        actor_kind=actor_kind,
        actor_label=actor_label,
        from_status=from_status,
        to_status=to_status,
        data=data,
    )
    for _ in range(2):
        length = request.audit_length
        event.position = length + 1
        event.prev_hash = request.audit_head
        event.hash = audit_event_hash(event)
        if ActionRequest.objects.filter(pk=request.pk, audit_length=length).update(
            audit_length=event.position, audit_head=event.hash
        ):
            break
        request.audit_length, request.audit_head = (
            ActionRequest.objects.select_for_update().filter(pk=request.pk).values_list("audit_length", "audit_head")
        ).get()
    else:
        raise RuntimeError(f"The audit chain head of request {request.pk} moved while its row was locked.")
    request.audit_length, request.audit_head = event.position, event.hash
    insert_new(*along, event)
    _trace_on_commit(request, event)
    return event


def insert_with_first_audit(request: ActionRequest, event: AuditEvent) -> None:
    """INSERT a new request and its first audit event (``first_audit_event``), in the transaction that
    creates the request.

    One statement fewer than ``audit`` after an INSERT: a request nobody else can see yet has no
    head to compare-and-swap. Same invariant: position 1, no previous hash, the head names it.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("insert_with_first_audit() must run inside the transaction that creates the request.")
    # Both rows in one round trip, with SQL compiled once (the submit path's hottest write).
    insert_new(request, event)
    first_audit_written(request, event)


def first_audit_event(
    request: ActionRequest,
    *,
    kind: str,
    now: datetime,
    actor_kind: str,
    actor_label: str,
    to_status: str,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """A new request's first audit event, chained (position 1, no previous hash), and the request's
    head set to name it. Writes nothing: ``insert_with_first_audit`` does, or a caller that writes
    both rows itself and then calls ``first_audit_written``."""
    event = _event(
        request, kind=kind, now=now, actor_kind=actor_kind, actor_label=actor_label, to_status=to_status, data=data
    )
    event.position, event.prev_hash = 1, ""
    event.hash = audit_event_hash(event)
    request.audit_length, request.audit_head = 1, event.hash
    return event


def first_audit_written(request: ActionRequest, event: AuditEvent) -> None:
    """What follows a new request's INSERT with its first event: the event's span, after commit."""
    _trace_on_commit(request, event)


def _event(
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
    return new_row(
        AuditEvent,
        request=request,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_kind=actor_kind,
        actor_label=actor_label,
        data=data or {},
        created_at=now,
    )


def _trace_on_commit(request: ActionRequest, event: AuditEvent) -> None:
    if tracing_enabled():
        transaction.on_commit(lambda: trace_event(request, event, committed_at=timezone.now()))


def webhook_enqueue(request: ActionRequest, *, now: datetime) -> WebhookDelivery | None:
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
    enqueue_each_on_commit("approvals.tasks.deliver_webhook", [delivery.id])
    return delivery


def announce_added(request: ActionRequest) -> None:
    """After commit: the card arrives on the open queues that may see it."""
    transaction.on_commit(lambda: realtime.publish_request_added(request))


def announce_updated(request: ActionRequest) -> None:
    """After commit: a card still in the queue changed (a quorum vote so far); its Slack messages follow."""
    slack_messages_refresh(request, now=timezone.now())
    transaction.on_commit(lambda: realtime.publish_request_updated(request))


def announce_left_queue(request: ActionRequest, *, by: str) -> None:
    """After commit: the card leaves the open queues, and a waiting agent is told; its Slack messages say why."""
    slack_messages_refresh(request, now=timezone.now())
    transaction.on_commit(lambda: realtime.publish_request_left_queue(request, by=by))


def announce_changed(request: ActionRequest) -> None:
    """After commit: a waiting agent is told the request changed (it is not in any queue)."""
    transaction.on_commit(lambda: realtime.publish_request_changed(request))


def announce_moved(previous: ActionRequest, request: ActionRequest) -> None:
    """After commit: the card leaves the queue it was in (``previous``) and arrives in its new one."""
    if previous.slack_announced:
        request.slack_announced = True
        slack_messages_refresh(request, now=timezone.now())

    def publish() -> None:
        realtime.publish_request_left_queue(previous, by="escalation")
        realtime.publish_request_added(request)

    transaction.on_commit(publish)


def announce_pause_changed(pause: Pause) -> None:
    """After commit: every open queue shows (or drops) the pause's banner."""
    transaction.on_commit(lambda: realtime.publish_pause_changed(pause))
