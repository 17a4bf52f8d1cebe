"""The client is tested against the live gateway: the real ASGI app served by uvicorn in a
thread on a free port. Tests need ``transactional_db``: the server only sees committed rows.
(The server is the session fixture ``live_url`` in tests/conftest.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from countersign_client import AsyncCountersign, Countersign
from django.db import connections

from approvals.models import ActionRequest
from approvals.services import agent_create
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults
from tests.factories import PolicyFactory

EMAIL = {"to": "customer@example.org", "subject": "Your refund", "body": "It is on its way."}


@pytest.fixture
def live_agent(transactional_db, live_url):
    policies_load_defaults()
    policy_table_cache_clear()
    agent, key = agent_create(name="client-test-bot")
    return agent, key


@pytest.fixture
def gate(live_agent, live_url) -> Iterator[Countersign]:
    client = Countersign(live_url, live_agent[1], backoff=0.01)
    yield client
    client.close()


@pytest.fixture
def sent(gate: Countersign) -> tuple[Callable[..., dict], list[dict]]:
    """A gated tool that records each time it really runs."""
    calls: list[dict] = []

    @gate.require_approval("send_external_email")
    def send_email(to: str, subject: str, body: str) -> dict:
        calls.append({"to": to, "subject": subject, "body": body})
        return {"message_id": f"m-{len(calls)}"}

    return send_email, calls


@pytest.fixture
def slow_review(gate: Countersign) -> tuple[Callable[..., None], list[int]]:
    """A gated tool whose requests expire a second after submission; records each time it really runs."""
    PolicyFactory(action_pattern="slow_review", mode="approve", pending_ttl_seconds=1)
    policy_table_cache_clear()
    calls: list[int] = []

    @gate.require_approval("slow_review")
    def act(x: int) -> None:
        calls.append(x)

    return act, calls


class LosesFirstAnswer(httpx.HTTPTransport):
    """POSTs to a path ending in ``path_suffix`` reach the gateway, but the answer to the first is lost on the way back."""

    def __init__(self, path_suffix: str) -> None:
        super().__init__()
        self.path_suffix = path_suffix
        self.matched = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.path_suffix):
            self.matched += 1
            if self.matched == 1:
                response.read()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def gated_email_async(gate: AsyncCountersign, calls: list[str]) -> Callable[..., Any]:
    """The async twin of ``sent``: a gated coroutine tool that records the recipient each time it runs."""

    @gate.require_approval("send_external_email")
    async def send_email(to: str, subject: str, body: str) -> str:
        calls.append(to)
        return "sent"

    return send_email


@pytest.fixture
def in_background() -> Iterator[Callable[..., Future]]:
    """Run an agent's blocking call in a thread while the test plays the reviewer."""
    pool = ThreadPoolExecutor(max_workers=2)
    yield lambda fn, *args, **kwargs: pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=True, cancel_futures=True)
    connections.close_all()


async def in_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.to_thread``, closing that thread's database connection once ``fn`` returns: the thread dies
    with the test's event loop, and a connection it left open would keep the test database from being dropped."""

    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def pending_request(*, timeout: float = 10.0, **filters: Any) -> ActionRequest:
    """The reviewer waits for the agent's request to show up in the queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ActionRequest.objects.filter(status="pending", **filters).order_by("-created_at").first()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no pending request matching {filters} within {timeout} s")
