"""A failing receiver is retried with exponential backoff and jitter, capped at an hour apart, for up to 24 hours."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from approvals.models import WebhookAttempt, WebhookDelivery
from core.outbox import next_attempt_delay
from tests.approvals.conftest import attempt_each_retry_when_due
from tests.helpers import submit_as, to_approved
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_policies")]


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (8, 1280), (9, 2560), (10, 3600), (40, 3600)],
)
def test_retry_delay_doubles_per_attempt_with_jitter_and_is_capped_at_an_hour(attempts, ceiling):
    delays = [next_attempt_delay(attempts).total_seconds() for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 150  # jittered: retries of many deliveries do not fire in lockstep


def test_a_receiver_that_keeps_failing_is_retried_for_24_hours_then_given_up(agent, alice, default_policies, settings):
    assert settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS == 24 * 3600  # the default
    with webhook_receiver(script=[500] * 200) as receiver:
        request = submit_as(agent, callback_url=receiver.url)
        to_approved(agent, request, alice)
        delivery = WebhookDelivery.objects.get(request=request)
        attempt_each_retry_when_due(delivery, tries=200)

    attempts = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert delivery.state == WebhookDelivery.State.FAILED
    assert len(attempts) == delivery.attempts == len(receiver.received)
    assert len(attempts) > 24  # capped at an hour apart, a day holds at least 24 attempts
    last_try = attempts[-1].attempted_at - delivery.created_at
    assert timedelta(hours=23) < last_try <= timedelta(hours=24)
    gaps = [(b.attempted_at - a.attempted_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] < gaps[4] < gaps[8]  # backing off
    assert max(gaps) <= 3600 + 5
