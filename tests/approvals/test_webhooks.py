from __future__ import annotations

import json
import socket
from io import StringIO
from unittest import mock

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from approvals.models import Agent, WebhookAttempt, WebhookDelivery
from approvals.services import Submission, action_request_decide, action_request_submit
from approvals.tasks import deliver_due_webhooks
from approvals.webhooks import webhook_delivery_attempt
from core.errors import InvalidInput
from core.netguard import validate_outbound_url
from tests.approvals.conftest import attempt_each_retry_when_due
from tests.conftest import PASSWORD, submission_body
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


def approved_delivery(agent, reviewer, url) -> WebhookDelivery:
    request = action_request_submit(
        agent=agent,
        submission=Submission(
            action_type="send_external_email",
            params={"to": "customer@example.org"},
            summary="Email the customer",
            evidence=[],
            callback_url=url,
        ),
    ).request
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)
    return WebhookDelivery.objects.get(request=request)


def test_delivered_event_verifies_with_standardwebhooks(agent, alice, default_policies):
    with webhook_receiver() as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)

        webhook_delivery_attempt(delivery_id=delivery.pk)

    [hit] = receiver.received
    payload = Webhook(agent.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == "action.approved"
    assert payload["data"]["id"] == str(delivery.request_id)
    assert payload["data"]["approval_token"].startswith("cat_")
    assert hit.headers["webhook-id"] == str(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == "delivered"


def test_tampered_body_fails_verification(agent, alice, default_policies):
    with webhook_receiver() as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)
        webhook_delivery_attempt(delivery_id=delivery.pk)

    [hit] = receiver.received
    tampered = hit.body.replace(b"approved", b"rejected")
    with pytest.raises(WebhookVerificationError):
        Webhook(agent.webhook_secret).verify(tampered, hit.headers)


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(agent, alice, default_policies):
    with webhook_receiver(script=[500, 500, 200]) as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)

        webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == "pending"
        first_retry_at = delivery.next_attempt_at
        assert first_retry_at > timezone.now()
        # Not due yet: a second worker asking now sends nothing.
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None

        with time_machine.travel(first_retry_at, tick=True):
            webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == "pending"
        second_retry_at = delivery.next_attempt_at
        # Exponential backoff: the second wait is longer than the first could ever be.
        assert (second_retry_at - first_retry_at).total_seconds() >= 10

        with time_machine.travel(second_retry_at, tick=True):
            webhook_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert delivery.attempts == 3
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [
        500,
        500,
        200,
    ]
    assert [a.error for a in WebhookAttempt.objects.filter(delivery=delivery)] == ["HTTP 500", "HTTP 500", ""]
    assert len(receiver.received) == 3
    # Every retry carries the same message id, so the receiver can deduplicate.
    assert {hit.headers["webhook-id"] for hit in receiver.received} == {str(delivery.pk)}


def test_delivery_gives_up_after_the_maximum_age(agent, alice, default_policies, settings):
    settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS = 60
    with webhook_receiver(script=[503] * 10) as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)
        attempt_each_retry_when_due(delivery, tries=10)

    assert delivery.state == "failed"
    assert delivery.last_status_code == 503


def test_event_survives_the_broker_being_down_and_the_sweep_delivers_it(
    agent, alice, default_policies, django_capture_on_commit_callbacks
):
    with webhook_receiver() as receiver:
        broker_down = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        with (
            mock.patch("approvals.tasks.deliver_webhook.delay", side_effect=broker_down) as delay,
            django_capture_on_commit_callbacks(execute=True),
        ):
            delivery = approved_delivery(agent, alice, receiver.url)
        assert delay.called  # the commit tried to queue it, and the broker refused
        delivery.refresh_from_db()
        assert delivery.state == "pending"
        assert receiver.received == []

        # The broker is back: the periodic sweep finds the row in the outbox.
        sent = deliver_due_webhooks()

    assert sent == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    [hit] = receiver.received
    assert Webhook(agent.webhook_secret).verify(hit.body, hit.headers)["type"] == "action.approved"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8000/hook",
        "http://[::1]/hook",
        "http://127.0.0.1/hook",
        "http://192.168.0.10/hook",
    ],
)
def test_private_and_non_http_callback_urls_are_refused(url, settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(InvalidInput):
        validate_outbound_url(url)


def fake_resolver(address):
    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


def test_hostname_resolving_to_loopback_is_refused(settings, monkeypatch):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver("127.0.0.1"))

    with pytest.raises(InvalidInput) as refused:
        validate_outbound_url("https://innocent-looking.example.com/hook")

    assert refused.value.code == "callback_url_not_allowed"


def test_hostname_resolving_to_a_public_address_is_accepted(settings, monkeypatch):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver("93.184.215.14"))

    assert validate_outbound_url("https://hooks.example.com/x") == "https://hooks.example.com/x"


def test_api_refuses_a_private_callback_url(api, settings, default_policies):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    response = api.post(
        "/api/v1/actions/",
        data=json.dumps(submission_body(callback_url="http://169.254.169.254/latest/meta-data/")),
        content_type="application/json",
    )

    assert response.status_code == 422
    assert "callback_url" in response.json()["error"]["details"]["fields"]


def test_delivery_to_an_address_that_became_private_is_not_sent(agent, alice, default_policies, settings):
    # Accepted while allowed (or while its DNS pointed elsewhere), refused at send time.
    with webhook_receiver() as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)
        settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

        webhook_delivery_attempt(delivery_id=delivery.pk)

    assert receiver.received == []
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "private" in attempt.error


def test_rotated_secret_signs_new_deliveries_and_the_old_one_no_longer_verifies(agent, alice, default_policies):
    old_secret = agent.webhook_secret
    out = StringIO()

    call_command("rotate_webhook_secret", agent.name, stdout=out, stderr=StringIO())

    new_secret = out.getvalue().strip()
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    assert Agent.objects.get(pk=agent.pk).webhook_secret == new_secret
    with webhook_receiver() as receiver:
        delivery = approved_delivery(Agent.objects.get(pk=agent.pk), alice, receiver.url)
        webhook_delivery_attempt(delivery_id=delivery.pk)
    [hit] = receiver.received
    assert Webhook(new_secret).verify(hit.body, hit.headers)["type"] == "action.approved"
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(hit.body, hit.headers)


def test_rotating_the_secret_of_an_unknown_agent_fails():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rotate_webhook_secret", "no-such-agent", stdout=StringIO(), stderr=StringIO())


def test_create_agent_prints_the_webhook_secret_before_the_api_key(db):
    out = StringIO()

    call_command("create_agent", "mail-bot", stdout=out, stderr=StringIO())

    secret, key = out.getvalue().strip().splitlines()
    assert secret == Agent.objects.get(name="mail-bot").webhook_secret
    assert key.startswith("cs_")


def test_admin_resends_a_delivered_webhook(agent, alice, admin_user, default_policies):
    with webhook_receiver() as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)
        webhook_delivery_attempt(delivery_id=delivery.pk)
        browser = Client()
        assert browser.login(username=admin_user.username, password=PASSWORD)

        response = browser.post(
            "/admin/approvals/webhookdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]}
        )
        assert response.status_code == 302
        delivery.refresh_from_db()
        assert delivery.state == "pending"

        deliver_due_webhooks()

    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert delivery.attempts == 2
    assert len(receiver.received) == 2


def test_reviewer_cannot_resend_webhooks_through_the_admin(agent, alice, default_policies):
    with webhook_receiver() as receiver:
        delivery = approved_delivery(agent, alice, receiver.url)
        webhook_delivery_attempt(delivery_id=delivery.pk)
    browser = Client()
    assert browser.login(username="alice", password=PASSWORD)

    browser.post("/admin/approvals/webhookdelivery/", {"action": "resend", "_selected_action": [str(delivery.pk)]})

    delivery.refresh_from_db()
    assert delivery.state == "delivered"
