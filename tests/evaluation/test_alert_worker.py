"""A real ``celery -A config worker`` delivers a drift alert: queued after commit, signed, received.

The worker is another process started for this module, with the alert settings in its
environment and the test database; the receiver is a real HTTP server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import AlertNotification
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory
from tests.processes import celery_worker_process
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("transactional_db")]

SECRET = "whsec_" + "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
DEADLINE_SECONDS = 30


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def worker(django_db_setup: None, receiver: Receiver, tmp_path_factory) -> Iterator[None]:
    env = {
        "COUNTERSIGN_ALERT_WEBHOOK_URL": receiver.url,
        "COUNTERSIGN_ALERT_WEBHOOK_SECRET": SECRET,
        "COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    log_path = tmp_path_factory.mktemp("worker") / "celery-worker.log"
    with celery_worker_process(name="alerts", log_path=log_path, env=env):
        yield


def test_the_worker_sends_a_new_alert_as_a_signed_webhook(worker, receiver, agent, settings):
    # This process queues the task; the worker process sends it with its own settings.
    settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
    settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 5)
    drift_detect(config=DriftConfig())
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    (alert,) = drift_detect(config=DriftConfig()).opened  # autocommit: on_commit queues the task now

    deadline = time.monotonic() + DEADLINE_SECONDS
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert receiver.received, "no alert webhook arrived from the worker"
    received = receiver.received[0]
    payload = Webhook(SECRET).verify(received.body, received.headers)
    assert (payload["type"], payload["data"]["alert_id"]) == ("drift_alert.opened", alert.pk)
    while time.monotonic() < deadline:
        notification = AlertNotification.objects.get()
        if notification.state == AlertNotification.State.DELIVERED:
            break
        time.sleep(0.1)
    assert notification.state == AlertNotification.State.DELIVERED
    assert [a.status_code for a in notification.attempt_log.all()] == [200]
