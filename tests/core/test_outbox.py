"""One outbox: the three outbox tables are ``core.outbox.OutboxMessage`` subclasses sent by one loop.

Agents' webhooks (``approvals.WebhookDelivery``), reviewer-group messages
(``approvals.QueueNotification``) and drift-alert notifications
(``evaluation.AlertNotification``) share their delivery fields, their attempt log and the
claim/send/record loop; the migration that brought the alert table in line keeps its rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.models import QueueNotification, WebhookDelivery
from core.outbox import OutboxAttempt, OutboxMessage, outbox_attempt, outbox_due, outbox_resend
from evaluation.models import AlertNotification, DriftAlert
from tests.factories import PendingRequestFactory

OUTBOXES = [WebhookDelivery, QueueNotification, AlertNotification]
SHARED_FIELDS = [
    "id",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "delivered_at",
    "last_status_code",
    "last_error",
]


def field_shape(field: Any) -> tuple:
    """The column as a migration sees it; the states a table adds are checked on their own below."""
    _name, path, args, kwargs = field.deconstruct()
    kwargs.pop("choices", None)
    return path, args, kwargs


@pytest.mark.parametrize("model", OUTBOXES, ids=lambda m: m.__name__)
def test_every_outbox_table_has_the_outbox_message_fields(model):
    assert issubclass(model, OutboxMessage)
    assert [f.name for f in OutboxMessage._meta.local_fields] == SHARED_FIELDS
    for name in SHARED_FIELDS:
        assert field_shape(model._meta.get_field(name)) == field_shape(OutboxMessage._meta.get_field(name)), name


@pytest.mark.parametrize("model", OUTBOXES, ids=lambda m: m.__name__)
def test_every_outbox_table_keeps_the_shared_states_and_an_attempt_log(model):
    assert set(OutboxMessage.State.values) <= set(model.State.values)
    assert {value for value, _label in model._meta.get_field("state").choices} == set(model.State.values)
    attempts = model._meta.get_field("attempt_log").related_model
    assert issubclass(attempts, OutboxAttempt)
    assert attempts._meta.ordering == ("attempted_at", "id")


def webhook_delivery(now) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        request=PendingRequestFactory(),
        event_type="action.approved",
        url="https://hooks.example.org/x",
        payload={},
        next_attempt_at=now,
        created_at=now,
    )


def queue_notification(now) -> QueueNotification:
    return QueueNotification.objects.create(
        request=PendingRequestFactory(),
        kind="new",
        channel="slack",
        target="https://hooks.example.org/x",
        next_attempt_at=now,
        created_at=now,
    )


def alert_notification(now) -> AlertNotification:
    alert = DriftAlert.objects.create(
        pattern_key="new_action_type|wire_transfer|",
        kind="new_action_type",
        action_type="wire_transfer",
        summary="New action type wire_transfer",
        first_seen_at=now,
        last_seen_at=now,
    )
    return AlertNotification.objects.create(
        alert=alert,
        event_type="drift_alert.opened",
        channel="webhook",
        target="https://hooks.example.org/x",
        payload={},
        next_attempt_at=now,
        created_at=now,
    )


ROWS = [webhook_delivery, queue_notification, alert_notification]


@pytest.mark.django_db
@pytest.mark.parametrize("make_row", ROWS, ids=lambda f: f.__name__)
def test_the_shared_loop_records_a_failed_try_then_the_delivery_on_every_outbox(make_row):
    row = make_row(timezone.now())

    failed = outbox_attempt(type(row), pk=row.pk, send=lambda _row, _now: 503)
    assert (failed.state, failed.attempts, failed.last_status_code, failed.last_error) == (
        "pending",
        1,
        503,
        "HTTP 503",
    )
    assert outbox_due(type(row)) == [], "backing off"

    type(row).objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    sent = outbox_attempt(type(row), pk=row.pk, send=lambda _row, _now: 204)

    assert (sent.state, sent.attempts, sent.last_status_code, sent.last_error) == ("delivered", 2, 204, "")
    assert [(a.status_code, a.error) for a in sent.attempt_log.all()] == [(503, "HTTP 503"), (204, "")]


@pytest.mark.django_db
@pytest.mark.parametrize("make_row", ROWS, ids=lambda f: f.__name__)
def test_a_resend_puts_a_delivered_row_back_in_the_outbox_due_now(make_row):
    row = make_row(timezone.now())
    outbox_attempt(type(row), pk=row.pk, send=lambda _row, _now: 200)

    assert outbox_resend(type(row), pks=[row.pk]) == 1

    assert outbox_due(type(row)) == [row.pk]
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("pending", 1)


BEFORE = ("evaluation", "0002_alert_notifications_time_to_decision")


@pytest.mark.django_db(transaction=True)
def test_the_alert_outbox_migration_keeps_the_rows_and_attempts_written_before_it():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps
    now = timezone.now()
    alert = old.get_model("evaluation", "DriftAlert").objects.create(
        pattern_key="k", kind="new_action_type", action_type="x", summary="s", first_seen_at=now, last_seen_at=now
    )
    notification = old.get_model("evaluation", "AlertNotification").objects.create(
        alert=alert,
        event_type="drift_alert.opened",
        channel="webhook",
        target="https://hooks.example.org/x",
        payload={"type": "drift_alert.opened"},
        state="failed",
        attempts=7,
        next_attempt_at=now,
        created_at=now,
        last_error="HTTP 503",
    )
    old.get_model("evaluation", "AlertNotificationAttempt").objects.create(
        notification=notification, attempted_at=now, status_code=503, error="HTTP 503"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    row = AlertNotification.objects.get(pk=notification.pk)
    assert (row.state, row.attempts, row.last_error, row.last_status_code) == ("failed", 7, "HTTP 503", None)
    assert row.payload == {"type": "drift_alert.opened"}
    assert [(a.status_code, a.error) for a in row.attempt_log.all()] == [(503, "HTTP 503")]
