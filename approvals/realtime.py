"""The only module that sends to the channel layer. Every event is sent after commit.

Two kinds of listener:
- open reviewer queues get cards added and removed, on the channel ``approvals.visibility``
  names for the request (only reviewers who may see it listen there);
- agents long-polling ``/wait`` (group ``request.<id>``) get told the request changed.

A pause starting or ending goes to every open queue (``queue.everyone``, which every reviewer
joins): its banner names only the agent or action type and the staff member's reason.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .models import ActionRequest, Pause
from .selectors import pause_as_json, queue_card
from .visibility import QUEUE_GROUP, queue_channel_for

logger = logging.getLogger(__name__)


def request_group(request_id: Any) -> str:
    return f"request.{request_id}"


class QueueAdded(TypedDict):
    type: Literal["queue.added"]
    card: dict[str, Any]


class QueueUpdated(TypedDict):
    type: Literal["queue.updated"]
    card: dict[str, Any]


class QueueRemoved(TypedDict):
    type: Literal["queue.removed"]
    id: str
    status: str
    by: str


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


def _send(
    group: str, message: QueueAdded | QueueUpdated | QueueRemoved | QueueClaim | RequestChanged | QueuePause
) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # Live updates are best effort: the queue resynchronises on reconnect and
        # waiting agents re-read the database, so a Redis hiccup must not fail the write.
        logger.warning("live event to %s not sent", group, exc_info=True)


def publish_request_added(request: ActionRequest) -> None:
    _send(queue_channel_for(request), QueueAdded(type="queue.added", card=queue_card(request)))


def publish_request_updated(request: ActionRequest) -> None:
    """A card still in the queue changed in a way reviewers must see (a quorum vote so far)."""
    _send(queue_channel_for(request), QueueUpdated(type="queue.updated", card=queue_card(request)))
    publish_request_changed(request)


def publish_request_left_queue(request: ActionRequest, *, by: str = "") -> None:
    _send(
        queue_channel_for(request),
        QueueRemoved(type="queue.removed", id=str(request.id), status=request.status, by=by),
    )
    _send(request_group(request.id), RequestChanged(type="request.changed", id=str(request.id), status=request.status))


def publish_request_changed(request: ActionRequest) -> None:
    _send(request_group(request.id), RequestChanged(type="request.changed", id=str(request.id), status=request.status))


def publish_claim_changed(request: ActionRequest, *, by: str, expires_at: str | None) -> None:
    """Tell the request's queue who is reviewing it (``expires_at`` None: nobody any more)."""
    kind: Literal["queue.claimed", "queue.released"] = "queue.claimed" if expires_at else "queue.released"
    _send(queue_channel_for(request), QueueClaim(type=kind, id=str(request.id), by=by, expires_at=expires_at))


def publish_pause_changed(pause: Pause) -> None:
    """Tell every open queue a pause started (its banner appears) or ended (its banner goes)."""
    kind: Literal["queue.paused", "queue.resumed"] = "queue.paused" if pause.is_active else "queue.resumed"
    _send(QUEUE_GROUP, QueuePause(type=kind, pause=pause_as_json(pause)))
