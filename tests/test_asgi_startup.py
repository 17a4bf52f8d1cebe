"""The ASGI worker keeps what it loads at start-up out of the garbage collector's full collections."""

from __future__ import annotations

import gc


def test_the_asgi_application_freezes_its_start_up_objects():
    import config.asgi  # noqa: F401  (freezes on import, as a uvicorn worker does)

    # A full collection over a worker's ~170,000 start-up objects took 83 ms (bench/README.md), during
    # which every request of that worker waited.
    assert gc.get_freeze_count() > 50_000


def test_the_asgi_application_runs_full_collections_rarely():
    import config.asgi  # noqa: F401

    # Requests leave no cyclic garbage (tests/core/test_asgi_handler.py), so a full collection mostly walks
    # live objects; with 1,000 agents waiting they paused every request of a worker for 100 to 145 ms.
    assert gc.get_threshold()[2] >= 100
