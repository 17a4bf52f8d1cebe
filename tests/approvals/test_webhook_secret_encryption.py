"""Agents' webhooks are signed with the secret stored encrypted; a secret no key opens is never guessed at."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from standardwebhooks import Webhook

from approvals.models import Agent, WebhookDelivery
from approvals.services import action_request_decide
from approvals.webhooks import webhook_delivery_attempt
from core.crypto import generate_key
from tests.helpers import stored_column, submit_as
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


def create_agent_printing_its_secret(name: str) -> tuple[Agent, str]:
    out = StringIO()
    call_command("create_agent", name, stdout=out, stderr=StringIO())
    secret, _api_key = out.getvalue().split()
    return Agent.objects.get(name=name), secret


def approved_delivery(agent: Agent, reviewer, url: str) -> WebhookDelivery:
    request = submit_as(agent, callback_url=url)
    action_request_decide(request_id=request.pk, reviewer=reviewer, approve=True)
    return WebhookDelivery.objects.get(request=request)


def test_a_delivery_verifies_with_the_secret_create_agent_printed_though_the_database_holds_only_ciphertext(
    alice, default_policies
):
    agent, secret = create_agent_printing_its_secret("mail-bot")

    with webhook_receiver() as receiver:
        webhook_delivery_attempt(delivery_id=approved_delivery(agent, alice, receiver.url).pk)

    [hit] = receiver.received
    assert Webhook(secret).verify(hit.body, hit.headers)["type"] == "action.approved"
    assert secret not in stored_column(Agent, agent.pk, "webhook_secret")


def test_a_delivery_whose_secret_no_key_opens_is_not_sent_and_its_attempt_says_why(settings, alice, default_policies):
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key()]
    agent, _secret = create_agent_printing_its_secret("mail-bot")
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key()]

    with webhook_receiver() as receiver:
        delivery = webhook_delivery_attempt(delivery_id=approved_delivery(agent, alice, receiver.url).pk)

    assert receiver.received == []
    assert delivery.state == "pending"  # retried: the key may be put back
    assert f"approvals.Agent.webhook_secret of row pk={agent.pk!r} cannot be decrypted" in delivery.last_error
    assert [attempt.error for attempt in delivery.attempt_log.all()] == [delivery.last_error]
