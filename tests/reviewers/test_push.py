"""Web Push: each new request and reminder goes, encrypted per RFC 8291, to the devices of the reviewers who may see it.

The push service is a stand-in: a real HTTP server on loopback that records what it receives
and answers as scripted (tests/webhook_receiver.py). Each test device has a real P-256 key pair
and auth secret, and the test decrypts what the stand-in received with them (``http_ece``).
"""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from approvals.models import ActionRequest, PushSubscription, QueueNotification, ReviewerGroupNotifications
from approvals.notifications import action_request_notify, action_requests_remind_due, queue_notification_attempt
from approvals.push import push_decision_token
from reviewers.services import push_subscription_save, reviewer_create
from tests.factories import PendingRequestFactory
from tests.helpers import PASSWORD
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Device:
    """A browser's push subscription: its own key pair and auth secret, at an endpoint of the stand-in."""

    def __init__(self, endpoint: str):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.subscription = {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)}}

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm")
        return json.loads(plain)


@pytest.fixture
def vapid(settings, capsys):
    call_command("generate_vapid_keys", subject="mailto:ops@example.org")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    settings.COUNTERSIGN_VAPID_PUBLIC_KEY = lines["COUNTERSIGN_VAPID_PUBLIC_KEY"]
    settings.COUNTERSIGN_VAPID_PRIVATE_KEY = lines["COUNTERSIGN_VAPID_PRIVATE_KEY"]
    settings.COUNTERSIGN_VAPID_SUBJECT = lines["COUNTERSIGN_VAPID_SUBJECT"]
    settings.COUNTERSIGN_PUBLIC_URL = "https://countersign.example"
    return lines


@pytest.fixture
def push_service():
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def finance_devices(vapid, push_service):
    fay = reviewer_create(username="fay", password=PASSWORD, group_name="finance")
    leo = reviewer_create(username="leo", password=PASSWORD, group_name="legal")
    fay_phone = Device(push_service.url + "/fay-phone")
    leo_phone = Device(push_service.url + "/leo-phone")
    push_subscription_save(user=fay, subscription=fay_phone.subscription, device="Fay's phone")
    push_subscription_save(user=leo, subscription=leo_phone.subscription, device="Leo's phone")
    return Group.objects.get(name="finance"), fay, fay_phone


def test_a_new_request_is_pushed_encrypted_to_the_devices_of_its_group_only(finance_devices, push_service):
    group, fay, fay_phone = finance_devices
    request = PendingRequestFactory(reviewer_group=group, summary="Refund <b>order</b> 42")

    action_request_notify(request_id=request.pk, kind="new")

    (received,) = push_service.received  # leo (legal) may not see it: no push for him
    assert received.path.endswith("/fay-phone")
    assert received.headers["content-encoding"] == "aes128gcm"
    assert received.headers["authorization"].startswith("vapid t=")
    assert int(received.headers["ttl"]) > 0
    assert b"order" not in received.body, "the payload is encrypted"
    payload = fay_phone.decrypt(received.body)
    assert payload["request_id"] == str(request.pk) and payload["revision"] == request.revision
    assert payload["title"] == "Review: send_external_email from " + request.agent.name
    assert payload["body"] == "Refund <b>order</b> 42"  # plain text: a notification renders no markup
    assert payload["url"] == f"https://countersign.example/queue/requests/{request.pk}/"
    row = QueueNotification.objects.get(request=request, channel="push")
    assert (row.state, row.reviewer) == ("delivered", fay)
    assert PushSubscription.objects.get(endpoint=fay_phone.subscription["endpoint"]).last_success_at


def test_the_vapid_signature_is_for_the_push_services_origin_with_our_public_key(finance_devices, push_service, vapid):
    group, _fay, _phone = finance_devices
    action_request_notify(request_id=PendingRequestFactory(reviewer_group=group).pk, kind="new")

    authorization = push_service.received[0].headers["authorization"]
    token = authorization.split("t=", 1)[1].split(",", 1)[0]
    key = authorization.split("k=", 1)[1]
    assert key == vapid["COUNTERSIGN_VAPID_PUBLIC_KEY"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == push_service.url.split("/hooks")[0]
    assert claims["sub"] == "mailto:ops@example.org"


def test_a_reminder_is_pushed_too(finance_devices, push_service):
    group, _fay, fay_phone = finance_devices
    ReviewerGroupNotifications.objects.create(group=group, remind_before_seconds=600)
    request = PendingRequestFactory(reviewer_group=group, expires_at=timezone.now() + timedelta(minutes=5))

    (claimed,) = action_requests_remind_due()
    row = QueueNotification.objects.get(request_id=claimed, channel="push", kind="reminder")
    queue_notification_attempt(notification_id=row.pk)

    assert fay_phone.decrypt(push_service.received[-1].body)["kind"] == "reminder"
    assert claimed == request.pk


def test_a_subscription_the_push_service_says_is_gone_is_removed_and_not_retried(finance_devices, push_service):
    group, _fay, fay_phone = finance_devices
    push_service.script.append(410)
    request = PendingRequestFactory(reviewer_group=group)

    action_request_notify(request_id=request.pk, kind="new")

    row = QueueNotification.objects.get(request=request, channel="push")
    assert row.state == "failed" and row.attempts == 1 and "gone" in row.last_error
    assert not PushSubscription.objects.filter(endpoint=fay_phone.subscription["endpoint"]).exists()
    # The next request reaches no removed device.
    action_request_notify(request_id=PendingRequestFactory(reviewer_group=group).pk, kind="new")
    assert len(push_service.received) == 1


def test_a_push_service_error_is_retried(finance_devices, push_service):
    group, _fay, _phone = finance_devices
    push_service.script.append(503)
    request = PendingRequestFactory(reviewer_group=group)

    action_request_notify(request_id=request.pk, kind="new")

    row = QueueNotification.objects.get(request=request, channel="push")
    assert row.state == "pending" and row.last_error == "HTTP 503"


def signed_in(user) -> Client:
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    return client


def approve_from_notification(client: Client, token: str):
    return client.post("/queue/push/decide", data=json.dumps({"token": token}), content_type="application/json")


def test_approve_from_the_notification_decides_with_the_revision_it_was_sent_with(finance_devices, push_service):
    group, fay, fay_phone = finance_devices
    request = PendingRequestFactory(reviewer_group=group)
    action_request_notify(request_id=request.pk, kind="new")
    token = fay_phone.decrypt(push_service.received[0].body)["token"]
    client = signed_in(fay)

    first = approve_from_notification(client, token)
    again = approve_from_notification(client, token)

    assert first.status_code == 200 and first.json()["message"] == "Approved"
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    request.refresh_from_db()
    assert (request.status, request.decision.reviewer, request.decision.surface) == ("approved", fay, "push")


def test_a_notification_for_an_older_revision_does_not_approve(finance_devices, push_service):
    group, fay, fay_phone = finance_devices
    request = PendingRequestFactory(reviewer_group=group)
    action_request_notify(request_id=request.pk, kind="new")
    token = fay_phone.decrypt(push_service.received[0].body)["token"]
    ActionRequest.objects.filter(pk=request.pk).update(revision=2)

    response = approve_from_notification(signed_in(fay), token)

    assert response.status_code == 409 and response.json()["error"]["code"] == "request_changed"
    request.refresh_from_db()
    assert request.status == "pending"


def test_another_reviewers_token_or_no_session_decides_nothing(finance_devices, push_service):
    group, fay, _phone = finance_devices
    finn = reviewer_create(username="finn", password=PASSWORD, group_name="finance")
    request = PendingRequestFactory(reviewer_group=group)
    fays_token = push_decision_token(user_id=fay.pk, request=request)

    as_finn = approve_from_notification(signed_in(finn), fays_token)
    anonymous = approve_from_notification(Client(), fays_token)
    forged = approve_from_notification(signed_in(fay), fays_token[:-4] + "AAAA")

    assert as_finn.status_code == 403 and as_finn.json()["error"]["code"] == "push_token_not_yours"
    assert anonymous.status_code == 401
    assert forged.status_code == 422
    request.refresh_from_db()
    assert request.status == "pending"


def test_subscribing_checks_the_keys_and_the_endpoint(vapid, settings):
    fay = reviewer_create(username="fay", password=PASSWORD, group_name="finance")
    client = Client(enforce_csrf_checks=False)
    client.login(username="fay", password=PASSWORD)
    good = Device("https://push.example.net/send/abc").subscription

    def subscribe(subscription):
        return client.post(
            "/queue/push/subscriptions",
            data=json.dumps({"subscription": subscription, "device": "Firefox"}),
            content_type="application/json",
        )

    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    assert subscribe(good).status_code == 201
    assert subscribe({**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}}).json()["error"]["code"] == (
        "invalid_subscription"
    )
    assert subscribe({**good, "keys": {"p256dh": "!!", "auth": good["keys"]["auth"]}}).status_code == 422
    assert subscribe({**good, "endpoint": "http://127.0.0.1:8000/x"}).status_code == 422
    assert subscribe("nope").status_code == 422
    assert list(PushSubscription.objects.values_list("user", "device")) == [(fay.pk, "Firefox")]


def test_the_service_worker_is_served_from_the_root(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert b"notificationclick" in response.content


def test_without_vapid_keys_nothing_is_pushed(push_service, settings):
    fay = reviewer_create(username="fay", password=PASSWORD, group_name="finance")
    PushSubscription.objects.create(user=fay, endpoint=push_service.url, p256dh="x", auth="y")
    action_request_notify(
        request_id=PendingRequestFactory(reviewer_group=Group.objects.get(name="finance")).pk, kind="new"
    )
    assert not QueueNotification.objects.filter(channel="push").exists()
    assert push_service.received == []


def test_separation_of_duties_holds_for_approve_from_a_notification(finance_devices, push_service):
    group, fay, fay_phone = finance_devices
    request = PendingRequestFactory(reviewer_group=group)
    request.agent.owner = fay
    request.agent.save()
    action_request_notify(request_id=request.pk, kind="new")
    token = fay_phone.decrypt(push_service.received[0].body)["token"]

    response = approve_from_notification(signed_in(fay), token)

    assert response.status_code == 403 and response.json()["error"]["code"] == "owner_cannot_approve"
    request.refresh_from_db()
    assert request.status == "pending"
