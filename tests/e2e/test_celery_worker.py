"""A real ``celery -A config worker`` process sweeps expired requests and delivers webhooks.

Not browser-marked: it runs in the SQLite and the PostgreSQL suites. The worker is
another process, so the tests use ``transactional_db`` and commit what it must see.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from approvals.models import ActionRequest, AuditEvent, Status, WebhookDelivery
from approvals.services import action_request_decide, agent_create
from approvals.tasks import sweep_expired
from policies.services import policies_load_defaults
from tests.e2e.conftest import submit_pending

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("transactional_db", "celery_worker")]

WORKER_DEADLINE_SECONDS = 20


def eventually(check: Callable[[], Any], *, what: str) -> Any:
    """Poll until ``check()`` is truthy: the worker is another process, on its own schedule."""
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(
                f"the worker did not {what} within {WORKER_DEADLINE_SECONDS} s (see test-artifacts/celery-worker.log)"
            )
        time.sleep(0.1)


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, Received]]:
    """A tiny HTTP server on loopback that records what is POSTed to it."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            received.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/countersign", received
    server.shutdown()
    server.server_close()


def test_the_worker_sweeps_a_request_past_its_deadline_to_expired():
    policies_load_defaults()
    agent, _key = agent_create(name="support-bot")
    request = submit_pending(agent)
    ActionRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    sweep_expired.delay()

    eventually(
        lambda: ActionRequest.objects.filter(pk=request.pk, status=Status.EXPIRED).exists(),
        what="expire the request",
    )
    event = AuditEvent.objects.get(request=request, kind="expired")
    assert (event.from_status, event.to_status, event.actor_kind) == (Status.PENDING, Status.EXPIRED, "system")


def test_the_worker_delivers_a_signed_webhook_when_a_request_is_decided(webhook_receiver, bob):
    url, received = webhook_receiver
    policies_load_defaults()
    agent, _key = agent_create(name="support-bot")
    request = submit_pending(agent, callback_url=url)

    # The decision writes the outbox row and, after commit, queues approvals.tasks.deliver_webhook.
    action_request_decide(request_id=request.pk, reviewer=bob, approve=True)

    assert received.arrived.wait(WORKER_DEADLINE_SECONDS), "no webhook arrived (see test-artifacts/celery-worker.log)"
    headers, body = received.requests[0]
    payload = Webhook(agent.webhook_secret).verify(body, headers)
    assert payload["type"] == "action.approved"
    assert payload["data"]["id"] == str(request.pk)
    assert payload["data"]["status"] == "approved"
    delivery = eventually(
        lambda: WebhookDelivery.objects.filter(request=request, state=WebhookDelivery.State.DELIVERED).first(),
        what="record the delivery",
    )
    assert (delivery.attempts, delivery.last_status_code) == (1, 204)
    assert json.loads(body)["id"] == str(delivery.id)
