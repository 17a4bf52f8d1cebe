"""The live queue's websocket: authenticate, join the queue groups, forward typed events.

The only thing a reviewer sends up this socket is which card they have open
(``claim`` / ``release``); the consumer hands that to the claim services and lets go
of every claim this connection holds when it closes. What comes up is bounded: a message
over COUNTERSIGN_WS_MAX_MESSAGE_BYTES closes the socket (1009), more than
COUNTERSIGN_WS_MESSAGES_PER_SECOND (with a burst) is refused and, if it goes on, closes it (1008).

A reviewer joins the channels ``approvals.visibility`` names for them, so a request
routed to a group is never pushed to anyone outside it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from approvals.selectors import user_is_reviewer
from approvals.visibility import queue_channels_for
from core.jsonlimits import JsonLimitError, loads_limited
from core.ratelimit import TokenBucket
from core.responses import error_body
from reviewers.services import claim_open, claim_release
from reviewers.two_factor import session_second_factor_step

RELEASE_DELAY_SECONDS = 0.5
_releasing: set[asyncio.Task] = set()


async def _release_later(request_ids: list[str], user: Any) -> None:
    await asyncio.sleep(RELEASE_DELAY_SECONDS)
    for request_id in request_ids:
        await database_sync_to_async(claim_release)(request_id=request_id, user=user)


CLOSE_FORBIDDEN = 4403
CLOSE_POLICY_VIOLATION = 1008  # RFC 6455: kept sending over the rate
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455; what uvicorn's --ws-max-size closes with too
REFUSED_BEFORE_CLOSE = 10


class QueueConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(user_is_reviewer)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # No Django middleware runs here: a session that still owes its second factor is refused by the same rule.
        if await database_sync_to_async(session_second_factor_step)(user, self.scope.get("session")) is not None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.claimed: set[str] = set()
        self.bucket = TokenBucket(
            rate=settings.COUNTERSIGN_WS_MESSAGES_PER_SECOND, burst=settings.COUNTERSIGN_WS_MESSAGE_BURST
        )
        self.refused_in_a_row = 0
        self.joined = await database_sync_to_async(queue_channels_for)(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username()})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        claimed = list(getattr(self, "claimed", ()))
        if claimed:
            # Released once this consumer's receive loop is gone: channels_redis reads every socket of a
            # process through one receive at a time, and a receive cancelled while it holds the process's
            # messages can drop one meant for another socket (channels_redis#151). The "released" event
            # this publishes would be exactly that message.
            task = asyncio.get_running_loop().create_task(_release_later(claimed, self.scope["user"]))
            _releasing.add(task)
            task.add_done_callback(_releasing.discard)

    async def send_error(self, code: str, message: str, details: dict | None = None) -> None:
        await self.send_json({"type": "error", "message": message, **error_body(code, message, details)})

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if getattr(self, "closing", False):
            return
        raw = text_data if text_data is not None else (bytes_data or b"")
        limit = settings.COUNTERSIGN_WS_MAX_MESSAGE_BYTES
        # uvicorn (--ws-max-size, same setting) already closes with 1009 on a larger frame; this
        # covers any other server. No client of ours sends more than a few hundred bytes.
        if len(raw) > limit or (isinstance(raw, str) and len(raw.encode("utf-8", "surrogatepass")) > limit):
            await self.send_error(
                "message_too_large", f"Messages are at most {limit} bytes; closing.", {"limit_bytes": limit}
            )
            await self.close_for(CLOSE_MESSAGE_TOO_BIG)
            return
        if not await self.within_rate():
            return
        # Parsed within core.jsonlimits (the same limits as every HTTP door): a refused message is
        # answered with an error, never a crashed consumer.
        try:
            content = loads_limited(raw)
        except JsonLimitError as exc:
            await self.send_error(exc.code, exc.message, exc.details)
            return
        except ValueError:
            await self.send_error(
                "malformed_json", "Send a JSON message: {'type': 'claim'|'release', 'id': <request id>}."
            )
            return
        await self.receive_json(content, **kwargs)

    async def within_rate(self) -> bool:
        """Spend a token; over the rate, the first refused message of a run gets a ``rate_limited``
        error (the rest are dropped silently), and a run of REFUSED_BEFORE_CLOSE closes with 1008."""
        if self.bucket.take():
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        if self.refused_in_a_row >= REFUSED_BEFORE_CLOSE:
            await self.close_for(CLOSE_POLICY_VIOLATION)
        elif self.refused_in_a_row == 1:
            rate = settings.COUNTERSIGN_WS_MESSAGES_PER_SECOND
            await self.send_error(
                "rate_limited",
                f"At most {rate} messages a second; this one was dropped. Keep sending and the socket closes.",
                {"messages_per_second": rate, "burst": settings.COUNTERSIGN_WS_MESSAGE_BURST},
            )
        return False

    async def close_for(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)

    async def receive_json(self, content: dict, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        request_id = str(content.get("id", ""))[:64] if kind in {"claim", "release"} else ""
        if not request_id:
            await self.send_json({"type": "error", "message": "Send {'type': 'claim'|'release', 'id': <request id>}."})
            return
        user = self.scope["user"]
        if kind == "claim":
            claim = await database_sync_to_async(claim_open)(request_id=request_id, user=user)
            if claim and claim["by"] == user.get_username():
                self.claimed.add(request_id)
            await self.send_json({"type": "claim", "id": request_id, "claim": claim})
        else:
            self.claimed.discard(request_id)
            await database_sync_to_async(claim_release)(request_id=request_id, user=user)

    async def queue_claimed(self, event: dict) -> None:
        await self.send_json(
            {"type": "claimed", "id": event["id"], "by": event["by"], "expires_at": event["expires_at"]}
        )

    async def queue_released(self, event: dict) -> None:
        await self.send_json({"type": "released", "id": event["id"], "by": event["by"]})

    async def queue_added(self, event: dict) -> None:
        await self.send_json({"type": "added", "card": event["card"]})

    async def queue_updated(self, event: dict) -> None:
        await self.send_json({"type": "updated", "card": event["card"]})

    async def queue_removed(self, event: dict) -> None:
        await self.send_json(
            {
                "type": "removed",
                "id": event["id"],
                "status": event["status"],
                "by": event["by"],
                "facets": event.get("facets"),
            }
        )

    async def queue_paused(self, event: dict) -> None:
        await self.send_json({"type": "paused", "pause": event["pause"]})

    async def queue_resumed(self, event: dict) -> None:
        await self.send_json({"type": "resumed", "pause": event["pause"]})
