from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from approvals.models import Decision
from approvals.services import action_request_decide, agent_create
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
LIVE_SERVER_START_SECONDS = 15


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    policy_table_cache_clear()
    yield
    policy_table_cache_clear()


@pytest.fixture
def default_policies(db):
    policies_load_defaults()


@pytest.fixture
def alice(db):
    return reviewer_create(username="alice", password=PASSWORD)


@pytest.fixture
def bob(db):
    return reviewer_create(username="bob", password=PASSWORD)


@pytest.fixture
def charlie(db):
    """Logged-in, but in no reviewer group."""
    return UserFactory(username="charlie")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def agent_and_key(db):
    return agent_create(name="support-bot")


@pytest.fixture
def agent(agent_and_key):
    return agent_and_key[0]


@pytest.fixture
def api(agent_and_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {agent_and_key[1]}")
    return client


@pytest.fixture
def outsider_api(db):
    _, key = agent_create(name="someone-elses-bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def submission_body(**overrides):
    body = {
        "action_type": "send_external_email",
        "params": {"to": "customer@example.org", "subject": "Your refund", "body": "It is on its way."},
        "evidence": [{"title": "Ticket 42", "url": "https://tickets.example/42", "excerpt": "Where is my refund?"}],
        "summary": "Tell the customer their refund is on its way",
        "confidence": 0.82,
        "context": {"trace_id": "trace-abc", "session_id": "s-1"},
    }
    body.update(overrides)
    return body


def reject(request_id, reviewer, *, reason: str = "Wrong customer", category: str = "wrong_recipient") -> Decision:
    """A reviewer rejects a pending request (the service wants a reason and its category)."""
    return action_request_decide(
        request_id=request_id, reviewer=reviewer, approve=False, reason=reason, reason_category=category
    )


def run_at_once(target: Callable[[int], Any], count: int = 8) -> list[Any]:
    """Call ``target(i)`` in ``count`` threads released together; ("ok", result) or ("error", exc) per thread.

    Each thread closes its own database connection, so the test database can be dropped.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = ("ok", target(index))
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture(scope="session")
def live_url(django_db_setup: None) -> Iterator[str]:
    """Serve the real ASGI app (HTTP and websockets) with uvicorn in a thread, once per session.

    Tests using it need ``transactional_db``: the server's threads only see committed rows.
    """
    import uvicorn

    from config.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Channels' ProtocolTypeRouter has no lifespan handler; uvicorn must not ask for one.
    server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + LIVE_SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start serving the ASGI app")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(LIVE_SERVER_START_SECONDS)
    sock.close()
