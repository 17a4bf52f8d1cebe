from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.http import HttpRequest
from django.test import Client
from rest_framework.test import APIClient

from approvals.selectors import agent_keys_forget_all
from approvals.services import agent_create
from config.celery import app
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults
from reviewers.services import reviewer_create
from tests.factories import UserFactory

# Re-exported: tests/client and tests/e2e still import these from here; new code imports tests.helpers.
from tests.helpers import PASSWORD, reject, run_at_once, submission_body  # noqa: F401

LIVE_SERVER_START_SECONDS = 15


@pytest.fixture(autouse=True, scope="session")
def _test_client_login_passes_a_request():
    """Django's ``Client.login`` calls ``authenticate()`` without a request, which the sign-in protection
    (axes) refuses to judge. Give it one from 127.0.0.1, so ``client.login`` is counted and locked out
    like a real sign-in instead of axes being switched off for tests."""
    original = Client.login

    def login(self, **credentials):
        if "request" not in credentials:
            request = HttpRequest()
            request.META["REMOTE_ADDR"] = "127.0.0.1"
            credentials["request"] = request
        return original(self, **credentials)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Client, "login", login)
        yield


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    policy_table_cache_clear()
    agent_keys_forget_all()
    yield
    policy_table_cache_clear()
    agent_keys_forget_all()


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
def finance(db):
    """A reviewer in the finance group only."""
    return reviewer_create(username="fiona", password=PASSWORD, group_name="finance")


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


@pytest.fixture
def eager_celery():
    """Run Celery tasks in the calling thread (the same tasks a worker runs)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


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
    from django.conf import settings

    # The same websocket message limit as scripts/run.sh and the Dockerfile give uvicorn.
    config = uvicorn.Config(
        application,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws_max_size=settings.COUNTERSIGN_WS_MAX_MESSAGE_BYTES,
    )
    server = uvicorn.Server(config)
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
