"""``GET /api/v1/actions/{id}/wait?timeout=N``: an async long-poll.

The view subscribes to the request's channel group, re-reads the database once
subscribed (so an event sent in between is not missed), then sleeps until an event,
the request's own deadline, or the timeout. A waiting agent holds no database
connection and, served by ``long_poll_asgi`` (as in production), no thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from approvals.models import ActionRequest, Agent, Status
from approvals.realtime import request_group
from approvals.representation import action_request_as_agent_sees_it
from approvals.selectors import action_request_get_for_agent
from approvals.services import action_request_settle_time
from core.errors import ServiceError
from core.responses import error_response

from .authentication import agent_for_api_key, bearer_token
from .waiting import recheck_round, releasing_connection

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0


@releasing_connection
def _load(agent: Agent, request_id: str) -> tuple[ActionRequest, dict[str, Any] | None]:
    """The request, and once it is no longer pending its answer too: one thread hop per wake-up."""
    action = action_request_settle_time(action_request_get_for_agent(agent=agent, request_id=request_id))
    return action, None if action.status == Status.PENDING else action_request_as_agent_sees_it(action)


_agent_for_api_key = releasing_connection(agent_for_api_key)
_as_agent_sees_it = releasing_connection(action_request_as_agent_sees_it)


def _parse_timeout(raw: str | None) -> float:
    if raw is None or raw == "":
        return min(DEFAULT_TIMEOUT_SECONDS, settings.COUNTERSIGN_MAX_WAIT_SECONDS)
    value = float(raw)
    if not math.isfinite(value) or value < 0 or value > settings.COUNTERSIGN_MAX_WAIT_SECONDS:
        raise ValueError
    return value


async def action_wait_view(request: HttpRequest, request_id: str) -> JsonResponse:
    if request.method != "GET":
        response = error_response(405, "method_not_allowed", f"Method {request.method} not allowed; use GET.")
        response["Allow"] = "GET"
        return response
    token = bearer_token(request.headers.get("Authorization", ""))
    agent = await sync_to_async(_agent_for_api_key, thread_sensitive=False)(token) if token else None
    if agent is None:
        response = error_response(
            401, "not_authenticated", "Authentication required: send 'Authorization: Bearer <agent API key>'."
        )
        response["WWW-Authenticate"] = 'Bearer realm="countersign"'
        return response
    try:
        timeout = _parse_timeout(request.GET.get("timeout"))
    except ValueError:
        return error_response(
            400,
            "invalid_timeout",
            f"timeout must be a number of seconds from 0 to {settings.COUNTERSIGN_MAX_WAIT_SECONDS}.",
            {"max_seconds": settings.COUNTERSIGN_MAX_WAIT_SECONDS},
        )

    layer = get_channel_layer()
    channel = joined = None
    receiving: asyncio.Future | None = None
    try:
        group = request_group(uuid.UUID(request_id))
    except ValueError:
        group = None  # not an id (a channel group name must be ASCII): _load answers the 404 below
    try:
        if layer is not None and group is not None:
            try:
                channel = await layer.new_channel()
                await layer.group_add(group, channel)
                joined = channel
            except Exception:
                logger.warning("long-poll falling back to polling: channel layer unavailable", exc_info=True)
                channel = None
        try:
            action, body = await sync_to_async(_load, thread_sensitive=False)(agent, request_id)
        except ServiceError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details, headers=exc.headers)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with recheck_round().watching(action.pk, live_events=channel is not None) as watch:
            while action.status == Status.PENDING:
                pause = deadline - loop.time()
                if pause <= 0:
                    break
                if action.expires_at is not None:
                    # Wake up right at the request's own deadline to report it expired.
                    until_expiry = (action.expires_at - timezone.now()).total_seconds() + 0.05
                    pause = max(0.05, min(pause, until_expiry))
                if channel is not None:
                    # One receive stays open until it delivers, never cancelled on a wake-up: channels_redis
                    # reads every channel of a process through one shared receive, and cancelling the receive
                    # that is reading can lose a message meant for another waiter (channels_redis#151).
                    receiving = receiving or asyncio.ensure_future(layer.receive(channel))
                await asyncio.wait(
                    {watch.settle_seen(), receiving} - {None}, timeout=pause, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving is not None and receiving.done():
                    if receiving.exception() is not None:
                        logger.warning(
                            "long-poll lost the channel layer; polling instead", exc_info=receiving.exception()
                        )
                        channel = None
                        watch.live_events_lost()
                    receiving = None
                action, body = await sync_to_async(_load, thread_sensitive=False)(agent, request_id)
    finally:
        if receiving is not None:
            receiving.cancel()  # the wait timed out (or the agent left) with nothing received
        if joined is not None:  # left even when the layer failed mid-wait: Redis may be back by now
            try:
                await layer.group_discard(group, joined)
            except Exception:
                logger.debug("group_discard failed", exc_info=True)

    if body is None:  # still pending at the timeout
        body = await sync_to_async(_as_agent_sees_it, thread_sensitive=False)(action)
    return JsonResponse(body, status=200)
