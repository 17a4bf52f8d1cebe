"""One object per running event loop: each uvicorn worker runs one loop; tests run several in one process."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable


def per_event_loop[T](make: Callable[[], T]) -> Callable[[], T]:
    """A function that returns the running loop's own ``make()``, made on first use and dropped with the loop."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def of_running_loop() -> T:
        loop = asyncio.get_running_loop()
        value = made.get(loop)
        if value is None:
            value = made[loop] = make()
        return value

    return of_running_loop
