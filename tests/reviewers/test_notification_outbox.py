"""Reviewer-group notifications go through an outbox: written with the event, retried, every try recorded.

Celery runs the tasks eagerly (the same tasks a worker runs); the Slack side is a real HTTP
server on loopback; email goes to Django's locmem backend, or to a subclass of it that fails once
like an SMTP server that dropped the connection.
"""

from __future__ import annotations

import json
import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from django.utils import timezone

from approvals.models import ActionRequest, QueueNotification, ReviewerGroupNotifications
from approvals.notifications import queue_notifications_create
from approvals.services import Submission, action_request_decide, action_request_submit, action_requests_expire_due
from approvals.tasks import deliver_due_queue_notifications, remind_due_requests
from tests.factories import PendingRequestFactory
from tests.helpers import submission_body, submit
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.usefixtures("eager_celery")


class FailsOnceBackend(EmailBackend):
    """The locmem backend, except that its first send fails the way a dropped SMTP connection does."""

    failures_left = 0

    def send_messages(self, messages):
        if FailsOnceBackend.failures_left:
            FailsOnceBackend.failures_left -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def smtp_fails_once(settings):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.FailsOnceBackend"}}
    FailsOnceBackend.failures_left = 1
    yield
    FailsOnceBackend.failures_left = 0


def sweep_when_due(notification: QueueNotification) -> int:
    """Travel to the row's scheduled retry and run the beat sweep there."""
    notification.refresh_from_db()
    with time_machine.travel(notification.next_attempt_at, tick=True):
        swept = deliver_due_queue_notifications()
    notification.refresh_from_db()
    return swept


@pytest.mark.django_db
def test_slack_500_is_retried_by_the_sweep_and_delivered_with_two_attempts(
    api, default_policies, django_capture_on_commit_callbacks
):
    with webhook_receiver(script=[500]) as slack:
        ReviewerGroupNotifications.objects.create(slack_webhook_url=slack.url)

        body = submit(api, on_commit=django_capture_on_commit_callbacks)

        notification = QueueNotification.objects.get(request_id=body["id"])
        assert (notification.kind, notification.channel, notification.state) == ("new", "slack", "pending")
        assert notification.last_status_code == 500 and notification.last_error == "HTTP 500"
        assert notification.next_attempt_at > timezone.now()
        assert deliver_due_queue_notifications() == 0  # not due yet

        assert sweep_when_due(notification) == 1

    assert notification.state == QueueNotification.State.DELIVERED
    assert notification.attempts == 2
    assert [(a.status_code, a.error) for a in notification.attempt_log.all()] == [(500, "HTTP 500"), (200, "")]
    assert len(slack.received) == 2
    assert json.loads(slack.received[0].body) == json.loads(slack.received[1].body)


@pytest.mark.django_db
def test_an_smtp_failure_is_recorded_and_the_email_is_sent_on_the_retry(
    api, default_policies, smtp_fails_once, django_capture_on_commit_callbacks
):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")

    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    notification = QueueNotification.objects.get(request_id=body["id"])
    assert mail.outbox == []
    assert notification.state == QueueNotification.State.PENDING
    assert notification.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"

    sweep_when_due(notification)

    assert notification.state == QueueNotification.State.DELIVERED
    assert [(a.status_code, a.error) for a in notification.attempt_log.all()] == [
        (None, "SMTPServerDisconnected: Connection unexpectedly closed"),
        (None, ""),
    ]
    (message,) = mail.outbox
    assert message.to == ["oncall@example.org"]
    assert message.subject == "[Countersign] Review: send_external_email from support-bot"


@pytest.mark.django_db
def test_reminder_is_written_and_sent_once_when_the_reminder_task_runs_twice(mailoutbox):
    with webhook_receiver() as slack:
        ReviewerGroupNotifications.objects.create(
            email_to="oncall@example.org", slack_webhook_url=slack.url, remind_before_seconds=600, notify_on_new=False
        )
        due = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=5))

        assert remind_due_requests() == 1
        assert remind_due_requests() == 0
        assert deliver_due_queue_notifications() == 0  # both rows went out the first time

    rows = QueueNotification.objects.filter(request=due).order_by("channel")
    assert [(r.kind, r.channel, r.state, r.attempts) for r in rows] == [
        ("reminder", "email", "delivered", 1),
        ("reminder", "slack", "delivered", 1),
    ]
    assert len(mailoutbox) == 1
    assert len(slack.received) == 1


@pytest.mark.django_db
def test_a_failed_reminder_is_retried_but_not_claimed_again(smtp_fails_once):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", remind_before_seconds=600)
    due = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=5))

    assert remind_due_requests() == 1
    notification = QueueNotification.objects.get(request=due)
    assert notification.state == QueueNotification.State.PENDING and mail.outbox == []

    with time_machine.travel(notification.next_attempt_at, tick=True):
        assert remind_due_requests() == 0
        assert deliver_due_queue_notifications() == 1

    assert QueueNotification.objects.filter(request=due).count() == 1
    assert len(mail.outbox) == 1
    assert "Reminder" in mail.outbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_nothing_is_written_or_sent_when_the_submission_rolls_back(agent, default_policies, mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")
    body = submission_body()
    submission = Submission(
        action_type=body["action_type"],
        params=body["params"],
        summary=body["summary"],
        evidence=body["evidence"],
        confidence=body["confidence"],
        context=body["context"],
    )

    with pytest.raises(RuntimeError), transaction.atomic():
        result = action_request_submit(agent=agent, submission=submission)
        assert result.request.status == "pending"
        assert QueueNotification.objects.count() == 1  # written with the request...
        raise RuntimeError("the caller's transaction fails after the submission")

    assert ActionRequest.objects.count() == 0
    assert QueueNotification.objects.count() == 0  # ...and gone with it
    assert deliver_due_queue_notifications() == 0
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_submission_is_sent_after_commit(agent, default_policies, mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")
    body = submission_body()

    with transaction.atomic():
        action_request_submit(
            agent=agent,
            submission=Submission(
                action_type=body["action_type"], params=body["params"], summary=body["summary"], evidence=[]
            ),
        )
        assert mailoutbox == []  # not from inside the transaction

    assert len(mailoutbox) == 1
    assert QueueNotification.objects.get().state == QueueNotification.State.DELIVERED


@pytest.mark.django_db
def test_a_row_for_a_request_decided_before_its_retry_is_skipped(alice, smtp_fails_once):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")
    request = PendingRequestFactory()
    with transaction.atomic():
        (notification,) = _create_new_rows(request)
    deliver_due_queue_notifications()  # fails once
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    sweep_when_due(notification)

    assert notification.state == QueueNotification.State.SKIPPED
    assert notification.attempts == 1
    assert mail.outbox == []


def _create_new_rows(request):
    return queue_notifications_create(request=request, kind="new", now=timezone.now(), deliver_after_commit=False)


@pytest.mark.django_db
def test_a_row_that_keeps_failing_gives_up_after_the_max_age(settings):
    settings.COUNTERSIGN_WEBHOOK_MAX_AGE_SECONDS = 60
    with webhook_receiver(script=[503] * 10) as slack:
        ReviewerGroupNotifications.objects.create(slack_webhook_url=slack.url)
        (notification,) = _create_new_rows(PendingRequestFactory())

        for _ in range(10):
            sweep_when_due(notification)
            if notification.state != QueueNotification.State.PENDING:
                break

    assert notification.state == QueueNotification.State.FAILED
    assert notification.attempt_log.count() == notification.attempts == len(slack.received)
    assert all(a.status_code == 503 for a in notification.attempt_log.all())


@pytest.mark.django_db
def test_escalation_writes_the_new_groups_row_in_its_transaction(mailoutbox, django_capture_on_commit_callbacks):
    first, second = Group.objects.create(name="first-line"), Group.objects.create(name="second-line")
    ReviewerGroupNotifications.objects.create(group=second, email_to="second@example.org")
    request = PendingRequestFactory(
        reviewer_group=first,
        escalation_group=second,
        on_expiry="escalate",
        pending_ttl_seconds=3600,
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        action_requests_expire_due()

    notification = QueueNotification.objects.get(request=request)
    assert (notification.group, notification.kind, notification.state) == (second, "new", "delivered")
    assert [m.to for m in mailoutbox] == [["second@example.org"]]


def test_beat_runs_the_notification_sweep():
    entry = django_settings.CELERY_BEAT_SCHEDULE["deliver-due-queue-notifications"]

    assert entry["task"] == "approvals.tasks.deliver_due_queue_notifications"
    assert entry["schedule"] == float(django_settings.COUNTERSIGN_SWEEP_INTERVAL_SECONDS)


# --- admin ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_the_attempts_and_resends_a_delivered_notification(client, admin_user, mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")
    (notification,) = _create_new_rows(PendingRequestFactory())
    deliver_due_queue_notifications()
    client.force_login(admin_user)

    page = client.get(f"/admin/approvals/queuenotification/{notification.pk}/change/")
    assert page.status_code == 200
    assert b"oncall@example.org" in page.content
    assert b"Queue notification attempts" in page.content

    response = client.post(
        "/admin/approvals/queuenotification/",
        {"action": "resend", "_selected_action": [str(notification.pk)]},
    )
    assert response.status_code == 302
    notification.refresh_from_db()
    assert notification.state == QueueNotification.State.PENDING

    assert deliver_due_queue_notifications() == 1
    notification.refresh_from_db()
    assert notification.state == QueueNotification.State.DELIVERED
    assert notification.attempt_log.count() == 2
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_admin_cannot_add_or_edit_notifications(client, admin_user):
    client.force_login(admin_user)

    assert client.get("/admin/approvals/queuenotification/add/").status_code == 403
