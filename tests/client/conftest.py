"""The client is tested against the live gateway: the real ASGI app served by uvicorn in a
thread on a free port. Tests need ``transactional_db``: the server only sees committed rows.
(tests/e2e/conftest.py has its own copy for browser tests; this one stays independent of it.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from approvals.models import ActionRequest
from approvals.services import agent_create
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults

START_SECONDS = 15


@pytest.fixture(scope="session")
def gateway_url(django_db_setup: None) -> Iterator[str]:
    import uvicorn

    from config.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Channels' ProtocolTypeRouter has no lifespan handler; uvicorn must not ask for one.
    server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="client-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start serving the ASGI app")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(START_SECONDS)
    sock.close()


@pytest.fixture
def live_agent(transactional_db, gateway_url):
    policies_load_defaults()
    policy_table_cache_clear()
    agent, key = agent_create(name="client-test-bot")
    return agent, key


@pytest.fixture
def in_background() -> Iterator[Callable[..., Future]]:
    """Run an agent's blocking call in a thread while the test plays the reviewer."""
    pool = ThreadPoolExecutor(max_workers=2)
    yield lambda fn, *args, **kwargs: pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=True, cancel_futures=True)
    connections.close_all()


def pending_request(*, timeout: float = 10.0, **filters: Any) -> ActionRequest:
    """The reviewer waits for the agent's request to show up in the queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ActionRequest.objects.filter(status="pending", **filters).order_by("-created_at").first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no pending request matching {filters} within {timeout} s")
