"""approvals 0014_encrypt_secrets encrypts the secrets stored before it, and going back restores the plaintext."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from approvals.models import Agent, QueueNotification, ReviewerGroupNotifications
from core.crypto import PREFIX
from tests.helpers import stored_column

BEFORE = ("approvals", "0013_agent_limits")
SECRET = "whsec_cGxhaW50ZXh0IHNlY3JldCBmcm9tIGJlZm9yZQ=="
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/s3cr3tT0kenXXXXXXXXXXXX"


def migrate_to(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def latest() -> list:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def write_plaintext_rows() -> dict[str, object]:
    """Rows as the tables held them before 0014: an agent, a group's Slack URL, its outbox row."""
    old = migrate_to([BEFORE]).loader.project_state([BEFORE]).apps
    now = timezone.now()
    agent = old.get_model("approvals", "Agent").objects.create(name="old-bot", webhook_secret=SECRET)
    config = old.get_model("approvals", "ReviewerGroupNotifications").objects.create(slack_webhook_url=SLACK_URL)
    request = old.get_model("approvals", "ActionRequest").objects.create(
        agent=agent,
        action_type="send_external_email",
        summary="Email the customer",
        request_hash="0" * 64,
        status="pending",
        mode="approve",
        risk="high",
        verdict_reason="Policy sets mode approve.",
        approval_ttl_seconds=900,
    )
    row = old.get_model("approvals", "QueueNotification").objects.create(
        request=request, kind="new", channel="slack", target=SLACK_URL, next_attempt_at=now, created_at=now
    )
    return {"agent": agent.pk, "config": config.pk, "row": row.pk}


def stored(pks) -> list[str]:
    return [
        stored_column(Agent, pks["agent"], "webhook_secret"),
        stored_column(ReviewerGroupNotifications, pks["config"], "slack_webhook_url"),
        stored_column(QueueNotification, pks["row"], "target"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_secrets_and_urls_stored_before_it():
    pks = write_plaintext_rows()

    migrate_to(latest())

    assert all(value.startswith(PREFIX) for value in stored(pks))
    assert not any(SECRET in value or "hooks.slack.com" in value for value in stored(pks))
    assert Agent.objects.get(pk=pks["agent"]).webhook_secret == SECRET
    assert ReviewerGroupNotifications.objects.get(pk=pks["config"]).slack_webhook_url == SLACK_URL
    assert QueueNotification.objects.get(pk=pks["row"]).target == SLACK_URL


@pytest.mark.django_db(transaction=True)
def test_migrating_back_writes_the_plaintext_again():
    pks = write_plaintext_rows()
    migrate_to(latest())

    migrate_to([BEFORE])
    values = stored(pks)
    migrate_to(latest())

    assert values == [SECRET, SLACK_URL, SLACK_URL]
