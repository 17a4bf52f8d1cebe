"""Alert webhooks go out the way agents' webhooks do: pinned to the checked address, and never lost to a broker outage.

The receiver is a real HTTP server on loopback. The rebinding tests answer the alert host's
DNS lookups themselves (a public address to the check, a private one afterwards), as the
agents' webhook tests do. The outage tests point this process's Celery broker at a port
nothing listens on while the alert is raised, then give the broker back and let the beat
sweep (in this process, or a real worker with beat) deliver the row that stayed in the outbox.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from config.celery import app
from countersign_servers import free_port
from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import AlertNotification, AlertNotificationAttempt, DriftAlert
from evaluation.tasks import deliver_due_alert_notifications
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory
from tests.processes import celery_worker_process
from tests.webhook_receiver import Receiver, webhook_receiver

SECRET = "whsec_" + "Zm9yIHRoZSBhbGVydCBkZWxpdmVyeSB0ZXN0cw=="
ALERT_HOST = "alerts.customer.example"
SWEEP_INTERVAL_SECONDS = 1
DELIVERY_DEADLINE_SECONDS = 20


@pytest.fixture
def eager_celery():
    """Run the delivery task in the calling thread (the same task a worker runs)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def rebinding(first: str, then: str) -> Callable[..., list]:
    """The alert host answers ``first`` once, then ``then`` (DNS rebinding); other names resolve as usual."""
    answers = [first]
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != ALERT_HOST:  # an address literal, as the HTTP client dials it
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop() if answers else then
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


def raise_new_action_type_alert(agent) -> DriftAlert:
    """The quickest real alert: a known history, then an action type never seen before."""
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 5, start=timezone.now() - timedelta(days=10))
    drift_detect(config=DriftConfig())
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    (alert,) = drift_detect(config=DriftConfig()).opened
    return alert


def alert_url(receiver: Receiver) -> str:
    """The receiver's URL under the alert host's name (the receiver listens on loopback)."""
    return receiver.url.replace("127.0.0.1", ALERT_HOST)


@pytest.mark.django_db
def test_an_alert_host_that_rebinds_to_loopback_after_the_check_is_not_posted_to(
    agent, settings, monkeypatch, eager_celery, django_capture_on_commit_callbacks
):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = alert_url(receiver)
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
        settings.COUNTERSIGN_WEBHOOK_TIMEOUT_SECONDS = 1
        # Checked against a public address, then resolved again by the HTTP client: to loopback.
        monkeypatch.setattr(socket, "getaddrinfo", rebinding("93.184.215.14", "127.0.0.1"))

        with django_capture_on_commit_callbacks(execute=True):
            raise_new_action_type_alert(agent)

    assert receiver.received == []
    (attempt,) = AlertNotificationAttempt.objects.all()
    assert attempt.status_code is None
    assert AlertNotification.objects.get().state == AlertNotification.State.PENDING


@pytest.mark.django_db
def test_a_checked_alert_host_is_posted_to_the_address_that_was_checked_with_its_own_host_header(
    agent, settings, monkeypatch, eager_celery, django_capture_on_commit_callbacks
):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = alert_url(receiver)
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        # Private addresses allowed, so the check passes; only one resolution may happen.
        monkeypatch.setattr(socket, "getaddrinfo", rebinding("127.0.0.1", "192.0.2.1"))

        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_new_action_type_alert(agent)

    [hit] = receiver.received
    assert hit.headers["host"] == alert_url(receiver).split("/")[2]
    payload = Webhook(SECRET).verify(hit.body, hit.headers)
    assert (payload["type"], payload["data"]["alert_id"]) == ("drift_alert.opened", alert.pk)
    notification = AlertNotification.objects.get()
    assert (notification.state, notification.last_status_code) == (AlertNotification.State.DELIVERED, 200)


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url``; give it its own broker back afterwards."""

    def drop_broker_pools(*, close: bool) -> None:
        # The app caches pools for the broker it first saw; kombu hands the shared broker's
        # pools back by URL, so only the borrowed broker's pools are closed (as in the e2e outage test).
        if close:
            for pool in (app.amqp._producer_pool, app._pool):
                if pool is not None:
                    pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    drop_broker_pools(close=False)
    app.conf.broker_url = url
    try:
        with override_settings(CELERY_BROKER_URL=url):
            yield
    finally:
        drop_broker_pools(close=True)
        app.conf.broker_url = previous


def raise_alert_while_the_broker_is_down(agent, caplog) -> AlertNotification:
    """Raise an alert with the broker on a dead port; the change commits and its row stays pending."""
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"), caplog.at_level(logging.WARNING, logger="evaluation"):
        # Autocommit (transactional test): drift detection's own transaction commits, then its
        # on-commit hook tries to queue the delivery on the dead broker.
        alert = raise_new_action_type_alert(agent)

    assert any("not queued" in r.getMessage() for r in caplog.records), "the enqueue did not fail"
    assert DriftAlert.objects.filter(pk=alert.pk).exists()
    notification = AlertNotification.objects.get(alert=alert)
    assert (notification.state, notification.attempts) == (AlertNotification.State.PENDING, 0)
    assert not notification.attempt_log.exists()
    return notification


@pytest.mark.django_db(transaction=True)
def test_an_alert_raised_while_the_broker_is_down_is_sent_by_the_sweep_once_it_is_back(agent, settings, caplog):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        notification = raise_alert_while_the_broker_is_down(agent, caplog)
        assert receiver.received == []

        # The broker is back: the beat sweep's task finds the row in the outbox.
        assert deliver_due_alert_notifications() == 1

    [hit] = receiver.received
    assert hit.headers["webhook-id"] == str(notification.pk)
    assert Webhook(SECRET).verify(hit.body, hit.headers)["type"] == "drift_alert.opened"
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (AlertNotification.State.DELIVERED, 1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_with_beat_delivers_an_alert_raised_while_the_broker_was_down(agent, settings, caplog, tmp_path):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        notification = raise_alert_while_the_broker_is_down(agent, caplog)

        # Nothing was queued: only the beat sweep, run by the worker on the restored broker, can find it.
        env = {
            "COUNTERSIGN_ALERT_WEBHOOK_URL": receiver.url,
            "COUNTERSIGN_ALERT_WEBHOOK_SECRET": SECRET,
            "COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE": "true",
            "COUNTERSIGN_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS),
        }
        log_path = tmp_path / "celery-worker.log"
        with celery_worker_process(name="alert-outage", log_path=log_path, env=env, beat_schedule=tmp_path / "beat"):
            deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
            assert receiver.received, f"no alert webhook within {DELIVERY_DEADLINE_SECONDS} s (see {log_path})"
            # Several more sweeps run; none may send it again.
            time.sleep(3 * SWEEP_INTERVAL_SECONDS)

    [hit] = receiver.received
    assert hit.headers["webhook-id"] == str(notification.pk)
    notification.refresh_from_db()
    assert (notification.state, notification.attempts, notification.last_status_code) == (
        AlertNotification.State.DELIVERED,
        1,
        200,
    )


@pytest.mark.django_db
def test_admin_resends_a_delivered_alert_notification_and_the_sweep_sends_it_again(
    agent, settings, admin_user, eager_celery, django_capture_on_commit_callbacks
):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        with django_capture_on_commit_callbacks(execute=True):
            raise_new_action_type_alert(agent)
        notification = AlertNotification.objects.get()
        browser = Client()
        browser.force_login(admin_user)

        response = browser.post(
            "/admin/evaluation/alertnotification/", {"action": "resend", "_selected_action": [str(notification.pk)]}
        )
        assert response.status_code == 302
        notification.refresh_from_db()
        assert notification.state == AlertNotification.State.PENDING

        assert deliver_due_alert_notifications() == 1

    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (AlertNotification.State.DELIVERED, 2)
    assert [hit.headers["webhook-id"] for hit in receiver.received] == [str(notification.pk)] * 2


@pytest.mark.django_db
def test_a_reviewer_cannot_resend_alert_notifications_through_the_admin(
    agent, settings, alice, eager_celery, django_capture_on_commit_callbacks
):
    with webhook_receiver() as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        with django_capture_on_commit_callbacks(execute=True):
            raise_new_action_type_alert(agent)
        notification = AlertNotification.objects.get()
        browser = Client()
        browser.force_login(alice)

        browser.post(
            "/admin/evaluation/alertnotification/", {"action": "resend", "_selected_action": [str(notification.pk)]}
        )

    notification.refresh_from_db()
    assert notification.state == AlertNotification.State.DELIVERED
