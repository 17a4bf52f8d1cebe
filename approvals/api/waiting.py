"""What the long-poll's waiters share per event loop: the recheck round, and the channel layer's slots.

Belt and braces for the long-poll: every waiter of a process re-read in one query per round.

A waiter wakes on its request's live event. Should that event be lost (Redis restarted, a message
dropped), a periodic re-read must still notice the decision. Each waiter re-reading on its own cost
one query per waiter per interval, all on the worker's one sync thread, where a thousand waiters'
re-reads queued ahead of the reviewers' decide requests (bench/README.md). Instead, one round per
event loop asks which of all the awaited requests have settled, in one statement per 500 of them,
and wakes only those waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Callable, Iterator

from asgiref.sync import sync_to_async
from django.db import connection

from approvals.selectors import action_requests_settled_among
from core.loops import per_event_loop

logger = logging.getLogger(__name__)

ROUND_SECONDS = 5.0
# With no channel layer (Redis down) the rounds are the only way a waiter hears of its decision.
ROUND_SECONDS_WITHOUT_LIVE_EVENTS = 1.0


def releasing_connection[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, then this thread's database connection handed back (to the pool, or closed).

    A waiter sleeps for up to COUNTERSIGN_MAX_WAIT_SECONDS between reads; holding a connection
    meanwhile would let a thousand waiters exhaust the pool (or the server's connections) and turn
    everyone else's requests into errors. Not inside a transaction (the tests' own).
    """

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:
                connection.close()

    return run


_settled_among = releasing_connection(action_requests_settled_among)


class Watch:
    """One waiter's place in its loop's round; ``settle_seen()`` resolves when a round finds it settled."""

    def __init__(self, round_: RecheckRound, request_id: uuid.UUID, *, live_events: bool) -> None:
        self._round = round_
        self.request_id = request_id
        self.live_events = live_events
        self._seen: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle_seen(self) -> asyncio.Future[None]:
        """What to wait on: a fresh future once the last one has resolved."""
        if self._seen.done():
            self._seen = asyncio.get_running_loop().create_future()
        return self._seen

    def settled(self) -> None:
        if not self._seen.done():
            self._seen.set_result(None)

    def live_events_lost(self) -> None:
        """The rounds are now all this waiter has: the round quickens while any such waiter remains."""
        if self.live_events:
            self.live_events = False
            self._round.without_live_events += 1

    def close(self) -> None:
        self._seen.cancel()
        self._round.leave(self)


class RecheckRound:
    """The requests awaited on one event loop, and the task that re-reads them together."""

    def __init__(self) -> None:
        self._watches: dict[uuid.UUID, set[Watch]] = {}
        self.without_live_events = 0
        self._task: asyncio.Task[None] | None = None
        self._reading = False  # a read in flight is let finish: its thread hands the connection back

    @contextlib.contextmanager
    def watching(self, request_id: uuid.UUID, *, live_events: bool) -> Iterator[Watch]:
        watch = Watch(self, request_id, live_events=live_events)
        self._watches.setdefault(request_id, set()).add(watch)
        self.without_live_events += not live_events
        if self._task is None or self._task.done():
            # In a context of its own: it outlives the first waiter's request, and carries none of its
            # context variables (its sync executor, its trace span) into later rounds.
            self._task = asyncio.create_task(
                self._run(), name="countersign-wait-recheck", context=contextvars.Context()
            )
        try:
            yield watch
        finally:
            watch.close()

    def leave(self, watch: Watch) -> None:
        watches = self._watches.get(watch.request_id)
        if watches is not None and watch in watches:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.request_id]
            self.without_live_events -= not watch.live_events
        if not self._watches and self._task is not None and not self._reading:
            self._task.cancel()  # nobody left to wake: no task left sleeping on the loop
            self._task = None

    @property
    def seconds(self) -> float:
        return ROUND_SECONDS_WITHOUT_LIVE_EVENTS if self.without_live_events else ROUND_SECONDS

    async def _run(self) -> None:
        while self._watches:
            await asyncio.sleep(self.seconds)
            if not self._watches:
                break
            try:
                # Off the worker's shared sync thread, where the reviewers' decide requests run: the
                # connection is handed back after each round, so no executor thread keeps one.
                self._reading = True
                settled_ids = await sync_to_async(_settled_among, thread_sensitive=False)(list(self._watches))
            except Exception:
                # The database is unreachable: each waiter still wakes at its own deadline and reports.
                logger.warning("long-poll recheck round failed; retrying next round", exc_info=True)
                continue
            finally:
                self._reading = False
            for request_id in settled_ids:
                for watch in self._watches.get(request_id, ()):
                    watch.settled()


# This event loop's round (one per uvicorn worker; tests run several loops in one process).
recheck_round = per_event_loop(RecheckRound)
