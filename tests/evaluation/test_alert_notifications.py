"""Drift alerts reach people: a Standard-Webhooks-signed POST to a real local receiver, and email.

Celery runs the delivery task eagerly in these tests (the same task a worker runs); the
receiver is a real HTTP server on loopback and the signature is checked with the
``standardwebhooks`` library, as a receiver would.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from config.celery import app
from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import AlertKind, AlertNotification, AlertNotificationAttempt
from evaluation.tasks import deliver_due_alert_notifications
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory
from tests.webhook_receiver import webhook_receiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = DriftConfig()


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def receiver(settings, eager_celery):
    with webhook_receiver() as r:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = r.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        yield r


@pytest.fixture
def clock():
    return {"t": timezone.now() - timedelta(days=10)}


def _write(agent, clock, cases):
    clock["t"] = write_history(
        agent=agent, action_type="send_email", cases=cases, start=clock["t"], step=timedelta(seconds=60)
    )


def _new_action_type_alert(agent, clock, capture):
    """The quickest real alert: a known history, then an action type never seen before."""
    _write(agent, clock, [Case()] * 5)
    drift_detect(config=CONFIG)
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    with capture(execute=True):
        run = drift_detect(config=CONFIG)
    return run


REASONS = ["other: x", "tone: y", "pii: z", "wrong-recipient: w", "amount: v"]


def _rejections(rng, n, rate):
    return [Case(outcome="rejected", reason=rng.choice(REASONS)) if rng.random() < rate else Case() for _ in range(n)]


def _rate_payloads(receiver):
    payloads = [_verified(r) for r in receiver.received]
    return [p for p in payloads if p["data"]["kind"] == AlertKind.REJECTION_RATE]


def _verified(received):
    headers = {k: v for k, v in received.headers.items() if k.startswith("webhook-")}
    return Webhook(SECRET).verify(received.body, headers)


def test_a_new_alert_is_sent_once_as_a_signed_webhook(agent, clock, receiver, django_capture_on_commit_callbacks):
    run = _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    (alert,) = run.opened
    assert len(receiver.received) == 1
    payload = _verified(receiver.received[0])
    assert payload["type"] == "drift_alert.opened"
    assert payload["data"]["alert_id"] == alert.pk
    assert payload["data"]["kind"] == AlertKind.NEW_ACTION_TYPE
    assert payload["data"]["url"].endswith(f"/dashboard/decisions/?alert={alert.pk}")
    notification = AlertNotification.objects.get()
    assert notification.state == AlertNotification.State.DELIVERED
    assert receiver.received[0].headers["webhook-id"] == str(notification.pk)
    (attempt,) = notification.attempt_log.all()
    assert attempt.status_code == 200 and attempt.error == ""


def test_a_forged_body_fails_the_signature_check(agent, clock, receiver, django_capture_on_commit_callbacks):
    from standardwebhooks.webhooks import WebhookVerificationError

    _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    received = receiver.received[0]
    received.body = received.body.replace(b"wire_transfer", b"read_weather")
    with pytest.raises(WebhookVerificationError):
        _verified(received)


def test_a_re_detection_that_is_no_worse_sends_nothing(agent, clock, receiver, django_capture_on_commit_callbacks):
    rng = random.Random(11)
    _write(agent, clock, _rejections(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, _rejections(rng, 100, 0.5))
    with django_capture_on_commit_callbacks(execute=True):
        assert [a.kind for a in drift_detect(config=CONFIG).opened] == [AlertKind.REJECTION_RATE]
    _write(agent, clock, _rejections(rng, 10, 0.5))
    with django_capture_on_commit_callbacks(execute=True):
        run = drift_detect(config=CONFIG)
    assert AlertKind.REJECTION_RATE in [a.kind for a in run.updated]
    assert [p["type"] for p in _rate_payloads(receiver)] == ["drift_alert.opened"]


def test_a_significantly_worse_alert_is_sent_again_as_worsened(
    agent, clock, receiver, django_capture_on_commit_callbacks
):
    rng = random.Random(12)
    _write(agent, clock, _rejections(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, _rejections(rng, 100, 0.4))
    with django_capture_on_commit_callbacks(execute=True):
        (opened,) = [a for a in drift_detect(config=CONFIG).opened if a.kind == AlertKind.REJECTION_RATE]
    _write(agent, clock, _rejections(rng, 100, 0.9))
    with django_capture_on_commit_callbacks(execute=True):
        run = drift_detect(config=CONFIG)
    assert AlertKind.REJECTION_RATE not in [a.kind for a in run.opened]
    payloads = _rate_payloads(receiver)
    assert [p["type"] for p in payloads] == ["drift_alert.opened", "drift_alert.worsened"]
    assert {p["data"]["alert_id"] for p in payloads} == {opened.pk}, "one alert, updated, not a second one"
    assert payloads[1]["data"]["details"]["recent_rate"] > payloads[0]["data"]["details"]["recent_rate"] + 0.1


def test_an_acknowledged_alert_that_gets_significantly_worse_is_open_again(
    agent, clock, alice, django_capture_on_commit_callbacks
):
    from evaluation.models import AlertStatus
    from evaluation.services import drift_alert_acknowledge

    rng = random.Random(13)
    _write(agent, clock, _rejections(rng, 1000, 0.05))
    drift_detect(config=CONFIG)
    _write(agent, clock, _rejections(rng, 100, 0.4))
    (alert,) = [a for a in drift_detect(config=CONFIG).opened if a.kind == AlertKind.REJECTION_RATE]
    drift_alert_acknowledge(alert_id=alert.pk, user=alice)
    _write(agent, clock, _rejections(rng, 10, 0.4))
    drift_detect(config=CONFIG)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED, "no worse: the acknowledgement stands"
    _write(agent, clock, _rejections(rng, 100, 0.9))
    drift_detect(config=CONFIG)
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.OPEN, None)


def test_a_failed_delivery_is_recorded_and_retried_by_the_sweep(
    agent, clock, settings, eager_celery, django_capture_on_commit_callbacks
):
    with webhook_receiver(script=[503]) as receiver:
        settings.COUNTERSIGN_ALERT_WEBHOOK_URL = receiver.url
        settings.COUNTERSIGN_ALERT_WEBHOOK_SECRET = SECRET
        _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
        notification = AlertNotification.objects.get()
        assert notification.state == AlertNotification.State.PENDING
        assert notification.last_error == "HTTP 503"
        assert notification.next_attempt_at > timezone.now()
        assert deliver_due_alert_notifications() == 0, "not due yet: backoff"
        AlertNotification.objects.update(next_attempt_at=timezone.now())
        assert deliver_due_alert_notifications() == 1
    notification.refresh_from_db()
    assert notification.state == AlertNotification.State.DELIVERED
    assert [a.status_code for a in notification.attempt_log.all()] == [503, 200]
    assert len(receiver.received) == 2
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1, "a retry keeps its message id"


def test_a_private_alert_url_is_refused_without_the_opt_in(
    agent, clock, receiver, settings, django_capture_on_commit_callbacks
):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    assert receiver.received == []
    (attempt,) = AlertNotificationAttempt.objects.all()
    assert attempt.status_code is None
    assert "private" in attempt.error


def test_alert_email_goes_to_the_configured_people(
    agent, clock, settings, eager_celery, mailoutbox, django_capture_on_commit_callbacks
):
    settings.COUNTERSIGN_ALERT_EMAILS = ["oncall@example.org", "lead@example.org"]
    settings.COUNTERSIGN_PUBLIC_URL = "https://countersign.example.org"
    (alert,) = _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks).opened
    (message,) = mailoutbox
    assert message.to == ["oncall@example.org", "lead@example.org"]
    assert "wire_transfer" in message.subject
    assert f"https://countersign.example.org/dashboard/decisions/?alert={alert.pk}" in message.body
    notification = AlertNotification.objects.get()
    assert notification.channel == AlertNotification.Channel.EMAIL
    assert notification.state == AlertNotification.State.DELIVERED
    assert notification.attempt_log.count() == 1


def test_nothing_is_queued_when_no_channel_is_configured(agent, clock, django_capture_on_commit_callbacks):
    run = _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    assert len(run.opened) == 1
    assert not AlertNotification.objects.exists()


def test_the_payload_is_compact_json_with_the_evidence(agent, clock, receiver, django_capture_on_commit_callbacks):
    _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    body = receiver.received[0].body
    assert b": " not in body[:40]
    data = json.loads(body)["data"]
    assert data["agent"] is None and data["action_type"] == "wire_transfer"
    assert len(data["details"]["request_ids"]) == 1


def test_admin_shows_a_notification_with_its_attempts(
    agent, clock, receiver, admin_user, django_capture_on_commit_callbacks
):
    from django.test import Client

    _new_action_type_alert(agent, clock, django_capture_on_commit_callbacks)
    notification = AlertNotification.objects.get()
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/evaluation/alertnotification/{notification.pk}/change/")
    assert page.status_code == 200
    assert "drift_alert.opened" in page.content.decode()
    assert client.get(f"/admin/evaluation/driftalert/{notification.alert_id}/change/").status_code == 200
