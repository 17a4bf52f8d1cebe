"""A webhook on every final state, to the request's callback URL or else the agent's default one."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from approvals.models import WebhookDelivery
from approvals.services import agent_create
from approvals.webhooks import webhook_delivery_attempt
from tests.helpers import submit_as, to_approved, to_cancelled, to_executed, to_expired, to_rejected
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


@pytest.mark.parametrize(
    ("reach", "event_type", "status"),
    [
        (to_approved, "action.approved", "approved"),
        (to_rejected, "action.rejected", "rejected"),
        (to_expired, "action.expired", "expired"),
        (to_cancelled, "action.cancelled", "cancelled"),
        (to_executed, "action.executed", "executed"),
    ],
    ids=["approved", "rejected", "expired", "cancelled", "executed"],
)
def test_every_final_state_is_posted_signed_to_the_agents_default_callback_url(
    reach, event_type, status, alice, default_policies
):
    with webhook_receiver() as receiver:
        agent, _key = agent_create(name="hooked-bot", default_callback_url=receiver.url)
        request = submit_as(agent)  # no callback_url of its own
        assert not WebhookDelivery.objects.filter(request=request).exists()  # pending is not final

        reach(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request, event_type=event_type)
        webhook_delivery_attempt(delivery_id=delivery.pk)

    assert delivery.url == receiver.url
    [hit] = [hit for hit in receiver.received if hit.headers["webhook-id"] == str(delivery.pk)]
    payload = Webhook(agent.webhook_secret).verify(hit.body, hit.headers)
    assert payload["type"] == event_type
    assert payload["data"]["id"] == str(request.pk)
    assert payload["data"]["status"] == status


def test_a_requests_own_callback_url_wins_over_the_agents_default(alice, default_policies):
    with webhook_receiver() as default, webhook_receiver() as own:
        agent, _key = agent_create(name="hooked-bot", default_callback_url=default.url)
        request = submit_as(agent, callback_url=own.url)
        to_approved(agent, request, alice)

        webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get(request=request).pk)

    assert len(own.received) == 1
    assert default.received == []


def test_a_request_without_any_callback_url_writes_no_delivery(agent, alice, default_policies):
    request = submit_as(agent)

    to_executed(agent, request, alice)

    assert not WebhookDelivery.objects.filter(request=request).exists()
