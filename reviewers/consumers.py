"""The live queue's websocket: authenticate, join the queue group, forward typed events. Never writes."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from approvals.realtime import QUEUE_GROUP
from approvals.selectors import user_is_reviewer

CLOSE_FORBIDDEN = 4403


class QueueConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(user_is_reviewer)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(QUEUE_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username()})

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(QUEUE_GROUP, self.channel_name)

    async def queue_added(self, event: dict) -> None:
        await self.send_json({"type": "added", "card": event["card"]})

    async def queue_removed(self, event: dict) -> None:
        await self.send_json({"type": "removed", "id": event["id"], "status": event["status"], "by": event["by"]})
