"""The live queue's websocket: authenticate, join the queue groups, forward typed events. Never writes.

A reviewer joins ``queue.everyone`` and one channel group per reviewer group they
belong to, so a request routed to a group is never pushed to anyone outside it.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from approvals.realtime import QUEUE_GROUP, reviewer_group_channel
from approvals.selectors import user_is_reviewer


def _channel_groups_for(user) -> list[str]:
    return [QUEUE_GROUP, *(reviewer_group_channel(gid) for gid in user.groups.values_list("id", flat=True))]


CLOSE_FORBIDDEN = 4403


class QueueConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(user_is_reviewer)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.joined = await database_sync_to_async(_channel_groups_for)(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username()})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def queue_added(self, event: dict) -> None:
        await self.send_json({"type": "added", "card": event["card"]})

    async def queue_removed(self, event: dict) -> None:
        await self.send_json({"type": "removed", "id": event["id"], "status": event["status"], "by": event["by"]})
