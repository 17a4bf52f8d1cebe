"""The in-flight guard: one gated run per tool call at a time in this process.

The gateway's idempotency key makes a retry find the same request, but two calls that both wait
on it would both see it approved. The execution claim on the gateway stops the second from
running the tool, yet it would still be refused as a violation and, worse, would race the first.
So a retry that arrives while the first call is still waiting or running waits here for it, and
then finds the request executed (``AlreadyExecuted``) without ever claiming.

The scope is the process, not the client instance: agent frameworks build a client per agent, per
request or per thread, and a retried tool call may come back through any of them. The one
registry below is shared by every ``Countersign`` and ``AsyncCountersign`` in the process, by
every thread and every event loop, so a sync and an async client gating the same tool call also
wait for each other. Across processes the gateway's claim is what keeps the run single.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager


class InFlight:
    """A lock per key, taken by threads (``hold``) and coroutines on any loop (``ahold``) alike.

    A release wakes every waiter for the key and each tries again, so a waiter that gives up
    (a cancelled task, an interrupted thread) never strands the ones behind it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: set[str] = set()
        self._waiters: dict[str, list[Callable[[], None]]] = {}

    def _take_or_queue(self, key: str, wake: Callable[[], None]) -> bool:
        with self._mutex:
            if key not in self._held:
                self._held.add(key)
                return True
            self._waiters.setdefault(key, []).append(wake)
            return False

    def _forget(self, key: str, wake: Callable[[], None]) -> None:
        with self._mutex:
            waiters = self._waiters.get(key)
            if waiters and wake in waiters:
                waiters.remove(wake)
                if not waiters:
                    del self._waiters[key]

    def _release(self, key: str) -> None:
        with self._mutex:
            self._held.discard(key)
            waiters = self._waiters.pop(key, [])
        for wake in waiters:
            wake()

    def held(self, key: str) -> bool:
        with self._mutex:
            return key in self._held

    @contextmanager
    def hold(self, key: str | None) -> Iterator[None]:
        """Block this thread until no other call holds ``key``; None holds nothing."""
        if key is None:
            yield
            return
        while True:
            woken = threading.Event()
            wake = woken.set
            if self._take_or_queue(key, wake):
                break
            try:
                woken.wait()
            finally:
                self._forget(key, wake)
        try:
            yield
        finally:
            self._release(key)

    @asynccontextmanager
    async def ahold(self, key: str | None) -> AsyncIterator[None]:
        """``hold`` for a coroutine: waits without blocking its event loop."""
        if key is None:
            yield
            return
        loop = asyncio.get_running_loop()
        while True:
            woken = loop.create_future()

            def wake(woken: asyncio.Future[None] = woken) -> None:
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits on it any more
                    loop.call_soon_threadsafe(_resolve, woken)

            if self._take_or_queue(key, wake):
                break
            try:
                await woken
            finally:
                self._forget(key, wake)
        try:
            yield
        finally:
            self._release(key)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


IN_FLIGHT = InFlight()  # the one guard of this process: every client, thread and event loop shares it
