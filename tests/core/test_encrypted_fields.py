"""Secrets at rest: the database holds ciphertext, the code reads plaintext (core.fields.EncryptedTextField).

Agents' webhook secrets, reviewer groups' Slack webhook URLs and the outbox rows that copy them.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from approvals.models import Agent, QueueNotification, ReviewerGroupNotifications
from approvals.notifications import queue_notifications_create
from approvals.services import agent_create
from core.crypto import PREFIX, DecryptionError, generate_key
from tests.factories import PendingRequestFactory
from tests.helpers import stored_column

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/s3cr3tT0kenXXXXXXXXXXXX"


def test_an_agents_webhook_secret_is_ciphertext_in_the_database_and_plaintext_in_the_model():
    agent, _key = agent_create(name="mail-bot")
    secret = agent.webhook_secret

    stored = stored_column(Agent, agent.pk, "webhook_secret")

    assert secret.startswith("whsec_")
    assert stored.startswith(PREFIX)
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    assert Agent.objects.get(pk=agent.pk).webhook_secret == secret


def test_a_slack_url_and_the_outbox_row_that_copies_it_are_ciphertext_in_the_database():
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL, email_to="oncall@example.org")
    request = PendingRequestFactory()

    rows = queue_notifications_create(request=request, kind="new", now=timezone.now(), deliver_after_commit=False)

    stored = [stored_column(ReviewerGroupNotifications, config.pk, "slack_webhook_url")]
    stored += [stored_column(QueueNotification, row.pk, "target") for row in rows]
    assert len(stored) == 3
    assert all(value.startswith(PREFIX) for value in stored)
    assert not any("hooks.slack.com" in value or "oncall@" in value for value in stored)
    assert ReviewerGroupNotifications.objects.get(pk=config.pk).slack_webhook_url == SLACK_URL
    assert sorted(row.target for row in QueueNotification.objects.all()) == [SLACK_URL, "oncall@example.org"]


def test_the_same_secret_is_stored_differently_each_time_it_is_written():
    first = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)
    first.save()
    before = stored_column(ReviewerGroupNotifications, first.pk, "slack_webhook_url")
    first.save()

    assert stored_column(ReviewerGroupNotifications, first.pk, "slack_webhook_url") != before


def test_an_empty_slack_url_is_stored_empty():
    config = ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")

    assert stored_column(ReviewerGroupNotifications, config.pk, "slack_webhook_url") == ""
    assert ReviewerGroupNotifications.objects.get(pk=config.pk).slack_webhook_url == ""


def test_a_plaintext_value_written_before_encryption_reads_as_itself():
    agent, _key = agent_create(name="legacy-bot")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE approvals_agent SET webhook_secret = %s", ["whsec_bGVnYWN5"])

    assert Agent.objects.get(pk=agent.pk).webhook_secret == "whsec_bGVnYWN5"


def test_filtering_on_an_encrypted_column_is_refused_rather_than_silently_empty():
    agent, _key = agent_create(name="mail-bot")

    with pytest.raises(FieldError, match="Unsupported lookup 'exact'"):
        list(Agent.objects.filter(webhook_secret=agent.webhook_secret))
    with pytest.raises(FieldError):
        list(ReviewerGroupNotifications.objects.filter(slack_webhook_url__startswith="https://"))
    assert list(Agent.objects.filter(webhook_secret__isnull=False)) == [agent]


def test_a_secret_under_a_key_no_longer_configured_is_an_error_naming_the_model_field_and_row(settings):
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key()]
    agent, _key = agent_create(name="mail-bot")
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key()]

    loaded = Agent.objects.get(pk=agent.pk)  # the row loads: only the secret is unreadable
    with pytest.raises(DecryptionError) as caught:
        loaded.webhook_secret  # noqa: B018

    message = str(caught.value)
    assert f"approvals.Agent.webhook_secret of row pk={agent.pk!r}" in message
    assert "COUNTERSIGN_ENCRYPTION_KEYS" in message


def test_saving_a_row_whose_secret_no_key_opens_keeps_the_secret_as_it_was(settings):
    old_key = generate_key()
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [old_key]
    agent, _key = agent_create(name="mail-bot")
    secret = agent.webhook_secret
    stored = stored_column(Agent, agent.pk, "webhook_secret")
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key()]

    loaded = Agent.objects.get(pk=agent.pk)
    loaded.is_active = False
    loaded.save()

    assert stored_column(Agent, agent.pk, "webhook_secret") == stored
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [old_key]
    assert Agent.objects.get(pk=agent.pk).webhook_secret == secret


def test_dumpdata_writes_the_ciphertext_not_the_secret():
    agent, _key = agent_create(name="mail-bot")
    ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)
    out = StringIO()

    call_command("dumpdata", "approvals.agent", "approvals.reviewergroupnotifications", stdout=out)

    dumped = out.getvalue()
    assert agent.webhook_secret not in dumped
    assert "hooks.slack.com" not in dumped
    assert [
        row["fields"].get("webhook_secret", row["fields"].get("slack_webhook_url"))[:7] for row in json.loads(dumped)
    ] == [
        PREFIX,
        PREFIX,
    ]
