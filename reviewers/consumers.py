"""The live queue's websocket: authenticate, join the queue groups, forward typed events.

The only thing a reviewer sends up this socket is which card they have open
(``claim`` / ``release``); the consumer hands that to the claim services and lets go
of every claim this connection holds when it closes.

A reviewer joins the channels ``approvals.visibility`` names for them, so a request
routed to a group is never pushed to anyone outside it.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from approvals.selectors import user_is_reviewer
from approvals.visibility import queue_channels_for
from core.jsonlimits import JsonLimitError, loads_limited
from core.responses import error_body
from reviewers.services import claim_open, claim_release
from reviewers.two_factor import session_second_factor_step

CLOSE_FORBIDDEN = 4403


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
        self.joined = await database_sync_to_async(queue_channels_for)(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username()})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        for request_id in getattr(self, "claimed", ()):
            await database_sync_to_async(claim_release)(request_id=request_id, user=self.scope["user"])

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        # Parsed within core.jsonlimits (the same limits as every HTTP door): a refused message is
        # answered with an error, never a crashed consumer.
        try:
            content = loads_limited(text_data if text_data is not None else (bytes_data or b""))
        except JsonLimitError as exc:
            await self.send_json(
                {"type": "error", "message": exc.message, **error_body(exc.code, exc.message, exc.details)}
            )
            return
        except ValueError:
            message = "Send a JSON message: {'type': 'claim'|'release', 'id': <request id>}."
            await self.send_json({"type": "error", "message": message, **error_body("malformed_json", message)})
            return
        await self.receive_json(content, **kwargs)

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
        await self.send_json({"type": "removed", "id": event["id"], "status": event["status"], "by": event["by"]})
