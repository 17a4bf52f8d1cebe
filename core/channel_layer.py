"""Live events to the channel layer in few Redis round trips, and off the caller's thread.

``channels_redis``' ``group_send`` costs four round trips per group (trim the group, read its
members, trim each member's queue, one script that queues the message), and from a sync view
``async_to_sync`` adds a hop to an event loop and back. A transition tells two groups (the
request's queue and its waiting agents), so a decision used to wait ~20 ms on Redis.

``PipelinedRedisChannelLayer.group_send_many`` sends several (group, message) pairs in two
round trips: one pipeline reads every group's members, one pipeline queues every message.
``publish`` hands a batch to one publisher thread per process, which sends batches in the
order they were handed over (an ``added`` never overtakes the ``removed`` that follows it),
so the request that caused them does not wait for Redis at all.

Live events stay best effort, as before: the queue resynchronises on reconnect and waiting
agents re-read the database. A process that exits sends what it still holds first (atexit).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from typing import Any

from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from core.loops import per_event_loop

logger = logging.getLogger(__name__)

Sends = list[tuple[str, dict[str, Any]]]

# The script channels_redis runs per group: queue the message on each member's channel, unless full.
_QUEUE_ON_CHANNELS_LUA = """
local over_capacity = 0
local current_time = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i=1,#KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


# Joining or leaving a group takes a connection from the layer's Redis pool for a moment. A burst
# of them (hundreds of agents starting to wait within a second, a queue page reopened by every
# reviewer after a deploy) would ask for more connections than the pool holds (redis-py refuses
# beyond 100): waiters would lose their live events, sockets would fail to open. They queue for
# one of these slots instead, leaving the rest of the pool to sends and receives.
GROUP_CHANGE_SLOTS = 40
# This event loop's slots (the layer serves several loops in tests).
group_change_slots = per_event_loop(lambda: asyncio.Semaphore(GROUP_CHANGE_SLOTS))


class PipelinedRedisChannelLayer(RedisChannelLayer):
    """channels_redis with ``group_send_many``: several groups' messages in two round trips; joining
    and leaving groups through a bounded number of slots (``GROUP_CHANGE_SLOTS``)."""

    async def group_add(self, group: str, channel: str) -> None:
        async with group_change_slots():
            await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        async with group_change_slots():
            await super().group_discard(group, channel)

    async def group_send_many(self, sends: Sends) -> None:
        if self.ring_size != 1:
            # Sharded over several Redis hosts: the groups live on different connections.
            for group, message in sends:
                await self.group_send(group, message)
            return
        connection = self.connection(0)
        now = time.time()
        reading = connection.pipeline(transaction=False)
        for group, _ in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
            key = self._group_key(group)
            reading.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
            reading.zrange(key, 0, -1)
        replies = await reading.execute()
        writing = connection.pipeline(transaction=False)
        for (_, message), members in zip(sends, replies[1::2], strict=True):
            names = [member.decode("utf8") for member in members]
            if not names:
                continue
            _, key_to_message, key_to_capacity = self._map_channel_keys_to_connection(names, message)
            keys = list(key_to_message)
            for key in keys:
                writing.zremrangebyscore(key, min=0, max=int(now) - int(self.expiry))
            writing.eval(
                _QUEUE_ON_CHANNELS_LUA,
                len(keys),
                *keys,
                *(key_to_message[key] for key in keys),
                *(key_to_capacity[key] for key in keys),
                now,
                self.expiry,
            )
        if len(writing):
            await writing.execute()


async def _send_batch(layer: Any, sends: Sends) -> None:
    if hasattr(layer, "group_send_many"):
        await layer.group_send_many(sends)
    else:
        for group, message in sends:
            await layer.group_send(group, message)


class _Publisher:
    """One thread with its own event loop per process; batches are sent one after the other, in order."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.batches: queue.Queue[Sends | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="countersign-live-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            sends = self.batches.get()
            try:
                if sends is None:
                    return
                layer = get_channel_layer()
                if layer is not None:
                    loop.run_until_complete(_send_batch(layer, sends))
            except Exception:
                logger.warning("live events to %s not sent", [group for group, _ in sends or ()], exc_info=True)
            finally:
                self.batches.task_done()

    def flush(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until every batch handed over so far is sent."""
        deadline = time.monotonic() + timeout
        while self.batches.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _current_publisher() -> _Publisher:
    global _publisher
    with _publisher_lock:
        # A forked child (a Celery prefork worker) inherits the object but not the thread.
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


def publish(sends: Sends) -> None:
    """Send each (group, message) to the channel layer, in order, without waiting for Redis."""
    if sends and get_channel_layer() is not None:
        _current_publisher().batches.put(list(sends))


def publish_flush(timeout: float = 5.0) -> None:
    """Block until what was published so far is sent (tests, and processes about to exit)."""
    if _publisher is not None and _publisher.pid == os.getpid():
        _publisher.flush(timeout)


atexit.register(publish_flush, 2.0)
