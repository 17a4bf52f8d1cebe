"""Fixtures for tests that drive Countersign from outside, as its users do.

- ``live_url``: the real ASGI app (HTTP and Channels websockets over the real Redis
  channel layer) served by uvicorn in a background thread, once per session. Tests
  that use it need ``transactional_db``: the server's threads only see committed rows.
- ``browser`` / ``new_page``: headless Chromium through Playwright's sync API, one
  browser per session and a fresh context (cookies, storage) per page.
- ``celery_worker``: a real ``celery -A config worker`` process on the test database.

Playwright's sync API runs an event loop in the main thread, so browser tests run
in their own pytest invocation with ``-p no:asyncio`` and ``DJANGO_ALLOW_ASYNC_UNSAFE``
(scripts/test.sh does both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections

from approvals.models import ActionRequest, Status
from approvals.services import Submission, action_request_submit, agent_create
from policies.services import policies_load_defaults
from tests.conftest import PASSWORD, submission_body
from tests.processes import celery_worker_process

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_in_thread(fn: Callable[..., Any], /, *args: Any, timeout: float = 30, **kwargs: Any) -> Any:
    """Call ``fn`` in a fresh thread and return its result (or raise its exception).

    The Playwright sync API keeps an event loop in the main thread, and asgiref's
    ``async_to_sync`` (which sends our live events after commit) refuses to run in
    a thread with an event loop. A service that publishes must run elsewhere, as it
    would in a web or worker process.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name=f"e2e-{getattr(fn, '__name__', 'call')}")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{fn!r} did not return within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- the live ASGI server ----------------------------------------------------------------


# --- the browser -------------------------------------------------------------------------


def chromium_executable() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(found):
        pytest.fail("Chromium is not installed (apt-get install chromium); make test installs it as root.")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live_url: str) -> Iterator[Callable[[], Any]]:
    """Open a page in a fresh browser context (its own cookies): one context per simulated person."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(base_url=live_url, viewport={"width": 1100, "height": 1000})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    return new_page()


def log_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and land on the queue with its websocket connected."""
    page.goto("/accounts/login/?next=/queue/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/queue/")
    # Until the websocket is open a new card could be missed: wait for it before acting.
    page.wait_for_selector("body[data-live=on]")


# --- an agent, as the queue tests see it ----------------------------------------------------


@pytest.fixture
def agent_key(transactional_db: None) -> str:
    """The default policy table and one agent's API key (on committed rows the live server sees)."""
    policies_load_defaults()
    _agent, key = agent_create(name="support-bot")
    return key


def submit(live_url: str, key: str, **overrides: Any) -> dict[str, Any]:
    """Submit an action over the real HTTP API, as an agent does.

    Each call is its own task (a fresh ``context.task_id``) unless ``context`` is given: the same
    params twice in one task would collapse into one pending card.
    """
    body = submission_body(**overrides)
    if "context" not in overrides:
        body["context"] = {**body["context"], "task_id": f"task-{uuid.uuid4()}"}
    response = httpx.post(
        f"{live_url}/api/v1/actions/",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def submit_pending(agent: Any, *, callback_url: str = "") -> ActionRequest:
    """Submit through the service an action the default policies hold for review."""
    result = action_request_submit(
        agent=agent,
        submission=Submission(
            action_type="send_external_email",
            params={"to": "customer@example.org", "subject": "Your refund"},
            summary="Tell the customer their refund is on its way",
            evidence=[],
            callback_url=callback_url,
        ),
    )
    assert result.request.status == Status.PENDING
    return result.request


def card(page: Any, request_id: str) -> Any:
    return page.locator(f"article[data-id='{request_id}']")


# --- a real Celery worker ----------------------------------------------------------------


@pytest.fixture(scope="module")
def celery_worker(django_db_setup: None, artifacts_dir: Path) -> Iterator[subprocess.Popen]:
    """``celery -A config worker`` in a subprocess, on the test database and the test Redis.

    Module-scoped: a worker left running would take tasks meant for workers other tests
    start with their own settings (they all listen on the shared Redis's default queue).
    """
    with celery_worker_process(name="e2e", log_path=artifacts_dir / "celery-worker.log") as process:
        yield process
