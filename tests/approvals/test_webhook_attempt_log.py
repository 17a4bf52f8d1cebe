"""Each delivery attempt is recorded (status code, latency, error); admins see the attempts and re-send."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from standardwebhooks.webhooks import Webhook

from approvals.models import WebhookAttempt, WebhookDelivery
from approvals.tasks import deliver_due_webhooks
from approvals.webhooks import webhook_delivery_attempt
from countersign_servers import free_port
from tests.approvals.conftest import attempt_each_retry_when_due
from tests.helpers import PASSWORD, submit_as, to_approved
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


@contextmanager
def slow_receiver(*, delay: float, status: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_an_attempt_records_status_code_latency_and_error(agent, alice, default_policies):
    with slow_receiver(delay=0.3, status=503) as url:
        request = submit_as(agent, callback_url=url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)

        webhook_delivery_attempt(delivery_id=delivery.pk)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 503
    assert attempt.error == "HTTP 503"
    assert 300 <= attempt.latency_ms < 5000


def test_an_unreachable_receiver_is_recorded_with_no_status_and_the_connection_error(agent, alice, default_policies):
    request = submit_as(agent, callback_url=f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    to_approved(agent, request, alice)
    delivery = WebhookDelivery.objects.get(request=request)

    webhook_delivery_attempt(delivery_id=delivery.pk)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectError")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("pending", None, attempt.error)


def test_admin_sees_each_attempt_of_a_delivery(agent, alice, admin_user, default_policies):
    with slow_receiver(delay=0, status=502) as url:
        request = submit_as(agent, callback_url=url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        webhook_delivery_attempt(delivery_id=delivery.pk)
    browser = Client()
    assert browser.login(username=admin_user.username, password=PASSWORD)

    listing = browser.get("/admin/approvals/webhookdelivery/")
    page = browser.get(f"/admin/approvals/webhookdelivery/{delivery.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert "action.approved" in listing.text
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert "HTTP 502" in page.text
    assert f">{attempt.latency_ms}<" in page.text.replace("\n", "").replace(" ", "")


def test_admin_resends_a_delivery_that_was_given_up_and_it_arrives(
    agent, alice, admin_user, default_policies, settings
):
    settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS = 60
    with webhook_receiver(script=[500] * 20) as receiver:
        request = submit_as(agent, callback_url=receiver.url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        attempt_each_retry_when_due(delivery, tries=20)
        assert delivery.state == WebhookDelivery.State.FAILED
        failed_attempts = delivery.attempts
        receiver.script.clear()  # the receiver is fixed
        browser = Client()
        assert browser.login(username=admin_user.username, password=PASSWORD)

        browser.post("/admin/approvals/webhookdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]})
        assert deliver_due_webhooks() == 1

    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert delivery.attempts == failed_attempts + 1
    assert Webhook(agent.webhook_secret).verify(receiver.received[-1].body, receiver.received[-1].headers)
