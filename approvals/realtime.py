"""The only module that sends to the channel layer. Every event is sent after commit.

Two kinds of listener:
- open reviewer queues get cards added and removed, on the channel ``approvals.visibility``
  names for the request (only reviewers who may see it listen there);
- agents long-polling ``/wait`` (group ``request.<id>``) get told the request changed.

A pause starting or ending goes to every open queue (``queue.everyone``, which every reviewer
joins): its banner names only the agent or action type and the staff member's reason.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from core.channel_layer import publish

from .models import ActionRequest, Pause
from .selectors import pause_as_json, queue_card
from .visibility import QUEUE_GROUP, queue_channel_for


def request_group(request_id: Any) -> str:
    return f"request.{request_id}"


class QueueAdded(TypedDict):
    type: Literal["queue.added"]
    card: dict[str, Any]


class QueueUpdated(TypedDict):
    type: Literal["queue.updated"]
    card: dict[str, Any]


class QueueFacets(TypedDict):
    action_type: str
    agent: str
    risk: str
    group: str


class QueueRemoved(TypedDict):
    type: Literal["queue.removed"]
    id: str
    status: str
    by: str
    # The card's value in each queue facet: an open page takes it off its own counts instead
    # of asking the server again, so a decision costs each open queue nothing but this message.
    facets: QueueFacets


class QueueClaim(TypedDict):
    type: Literal["queue.claimed", "queue.released"]
    id: str
    by: str
    expires_at: str | None


class RequestChanged(TypedDict):
    type: Literal["request.changed"]
    id: str
    status: str


class QueuePause(TypedDict):
    type: Literal["queue.paused", "queue.resumed"]
    pause: dict[str, Any]


Event = QueueAdded | QueueUpdated | QueueRemoved | QueueClaim | RequestChanged | QueuePause


def _send(*sends: tuple[str, Event]) -> None:
    """One batch, one publish: sent in two Redis round trips by the publisher thread, in order.

    Best effort: the queue resynchronises on reconnect and waiting agents re-read the
    database, so a Redis hiccup must not fail the write (core.channel_layer logs it).
    """
    publish(list(sends))


def publish_request_added(request: ActionRequest) -> None:
    _send((queue_channel_for(request), QueueAdded(type="queue.added", card=queue_card(request))))


def publish_request_updated(request: ActionRequest) -> None:
    """A card still in the queue changed in a way reviewers must see (a quorum vote so far)."""
    _send(
        (queue_channel_for(request), QueueUpdated(type="queue.updated", card=queue_card(request))),
        (request_group(request.id), _changed(request)),
    )


def publish_request_left_queue(request: ActionRequest, *, by: str = "") -> None:
    _send(
        (
            queue_channel_for(request),
            QueueRemoved(
                type="queue.removed", id=str(request.id), status=request.status, by=by, facets=_facets(request)
            ),
        ),
        (request_group(request.id), _changed(request)),
    )


def _facets(request: ActionRequest) -> QueueFacets:
    """The values the queue's facet counts group by (approvals.selectors.FACETS), as the page shows them."""
    return QueueFacets(
        action_type=request.action_type,
        agent=request.agent.name,
        risk=request.risk,
        group=request.reviewer_group.name if request.reviewer_group_id else "",
    )


def _changed(request: ActionRequest) -> RequestChanged:
    return RequestChanged(type="request.changed", id=str(request.id), status=request.status)


def publish_request_changed(request: ActionRequest) -> None:
    _send((request_group(request.id), _changed(request)))


def publish_claim_changed(request: ActionRequest, *, by: str, expires_at: str | None) -> None:
    """Tell the request's queue who is reviewing it (``expires_at`` None: nobody any more)."""
    kind: Literal["queue.claimed", "queue.released"] = "queue.claimed" if expires_at else "queue.released"
    _send((queue_channel_for(request), QueueClaim(type=kind, id=str(request.id), by=by, expires_at=expires_at)))


def publish_pause_changed(pause: Pause) -> None:
    """Tell every open queue a pause started (its banner appears) or ended (its banner goes)."""
    kind: Literal["queue.paused", "queue.resumed"] = "queue.paused" if pause.is_active else "queue.resumed"
    _send((QUEUE_GROUP, QueuePause(type=kind, pause=pause_as_json(pause))))
