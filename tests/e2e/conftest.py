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
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.db import connection, connections

from approvals.services import agent_create
from policies.services import policies_load_defaults
from tests.conftest import PASSWORD, submission_body

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
WORKER_START_SECONDS = 30


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
    """Submit an action over the real HTTP API, as an agent does."""
    response = httpx.post(
        f"{live_url}/api/v1/actions/",
        json=submission_body(**overrides),
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def card(page: Any, request_id: str) -> Any:
    return page.locator(f"article[data-id='{request_id}']")


# --- a real Celery worker ----------------------------------------------------------------


def database_url_for_tests() -> str:
    """A DATABASE_URL naming the database this test session uses (not the one in settings)."""
    settings_dict = connection.settings_dict
    name = settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, artifacts_dir: Path) -> Iterator[subprocess.Popen]:
    """``celery -A config worker`` in a subprocess, on the test database and the test Redis."""
    from config.celery import app

    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_tests()
    env.pop("COUNTERSIGN_CELERY_EAGER", None)
    hostname = f"e2e-{os.getpid()}@countersign-tests"
    log_path = artifacts_dir / "celery-worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                hostname,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {log_path}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
