"""The keys: COUNTERSIGN_ENCRYPTION_KEYS (first encrypts, all decrypt), rotation, and production's refusal
to start without them."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from approvals.models import Agent, QueueNotification, ReviewerGroupNotifications
from approvals.notifications import queue_notifications_create
from approvals.services import agent_create
from core.crypto import PREFIX, DecryptionError, decrypt, encrypt, generate_key
from tests.factories import PendingRequestFactory
from tests.helpers import stored_column

ROOT = Path(__file__).resolve().parents[2]
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/s3cr3tT0kenXXXXXXXXXXXX"


def rotate(**options) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out, **options)
    return out.getvalue()


def secrets_written_under(settings, key: str) -> dict[str, object]:
    """An agent, a group's Slack URL and its outbox row, encrypted with ``key``."""
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [key]
    agent, _ = agent_create(name="mail-bot")
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)
    [row] = queue_notifications_create(
        request=PendingRequestFactory(agent=agent), kind="new", now=timezone.now(), deliver_after_commit=False
    )
    return {"agent": agent, "config": config, "row": row, "secret": agent.webhook_secret}


def read_all(written: dict[str, object]) -> tuple[str, str, str]:
    return (
        Agent.objects.get(pk=written["agent"].pk).webhook_secret,
        ReviewerGroupNotifications.objects.get(pk=written["config"].pk).slack_webhook_url,
        QueueNotification.objects.get(pk=written["row"].pk).target,
    )


def stored_all(written: dict[str, object]) -> tuple[str, str, str]:
    return (
        stored_column(Agent, written["agent"].pk, "webhook_secret"),
        stored_column(ReviewerGroupNotifications, written["config"].pk, "slack_webhook_url"),
        stored_column(QueueNotification, written["row"].pk, "target"),
    )


@pytest.mark.django_db
def test_after_rotation_values_written_under_the_old_key_read_with_the_new_key_alone(settings):
    old, new = generate_key(), generate_key()
    written = secrets_written_under(settings, old)
    expected = (written["secret"], SLACK_URL, SLACK_URL)

    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new, old]
    assert read_all(written) == expected
    output = rotate()
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new]

    assert read_all(written) == expected
    assert "approvals.Agent.webhook_secret: re-encrypted 1 from an older key" in output
    assert "approvals.QueueNotification.target: re-encrypted 1 from an older key" in output
    assert "approvals.ReviewerGroupNotifications.slack_webhook_url: re-encrypted 1 from an older key" in output


@pytest.mark.django_db
def test_without_rotation_the_new_key_alone_cannot_read_the_old_values(settings):
    old, new = generate_key(), generate_key()
    written = secrets_written_under(settings, old)

    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new]

    with pytest.raises(DecryptionError):
        Agent.objects.get(pk=written["agent"].pk).webhook_secret  # noqa: B018


@pytest.mark.django_db
def test_a_second_rotation_changes_nothing(settings):
    old, new = generate_key(), generate_key()
    written = secrets_written_under(settings, old)
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new, old]
    rotate()
    after_first = stored_all(written)

    output = rotate()

    assert stored_all(written) == after_first
    lines = output.strip().splitlines()
    assert len(lines) >= 3  # every encrypted field reports, including the three written above
    assert all("re-encrypted 0 from an older key, encrypted 0 plaintext" in line for line in lines), output


@pytest.mark.django_db
def test_a_dry_run_counts_what_would_change_and_writes_nothing(settings):
    old, new = generate_key(), generate_key()
    written = secrets_written_under(settings, old)
    before = stored_all(written)
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new, old]

    output = rotate(dry_run=True)

    assert stored_all(written) == before
    assert "approvals.Agent.webhook_secret: would re-encrypt 1 from an older key" in output


@pytest.mark.django_db
def test_rotation_encrypts_plaintext_values_written_before_encryption(settings):
    agent, _ = agent_create(name="legacy-bot")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE approvals_agent SET webhook_secret = %s", ["whsec_bGVnYWN5"])

    output = rotate()

    assert stored_column(Agent, agent.pk, "webhook_secret").startswith(PREFIX)
    assert Agent.objects.get(pk=agent.pk).webhook_secret == "whsec_bGVnYWN5"
    assert "approvals.Agent.webhook_secret: re-encrypted 0 from an older key, encrypted 1 plaintext" in output


@pytest.mark.django_db
def test_rotation_walks_the_rows_in_batches(settings):
    old, new = generate_key(), generate_key()
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [old]
    secrets = {agent_create(name=f"bot-{n}")[0].pk: None for n in range(5)}
    secrets = {pk: Agent.objects.get(pk=pk).webhook_secret for pk in secrets}
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new, old]

    output = rotate(batch_size=2)
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new]

    assert {agent.pk: agent.webhook_secret for agent in Agent.objects.all()} == secrets
    assert "approvals.Agent.webhook_secret: re-encrypted 5 from an older key" in output


@pytest.mark.django_db
def test_rotation_names_the_rows_no_key_opens_and_still_rotates_the_others(settings):
    lost, old, new = generate_key(), generate_key(), generate_key()
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [lost]
    lost_agent, _ = agent_create(name="lost-bot")
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [old]
    kept_agent, _ = agent_create(name="kept-bot")
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new, old]

    with pytest.raises(CommandError, match=f"approvals.Agent.webhook_secret rows {lost_agent.pk}"):
        rotate()

    settings.COUNTERSIGN_ENCRYPTION_KEYS = [new]
    assert Agent.objects.get(pk=kept_agent.pk).webhook_secret == kept_agent.webhook_secret


@pytest.mark.django_db
def test_the_key_derived_from_secret_key_can_be_listed_second_when_moving_to_explicit_keys(settings):
    settings.COUNTERSIGN_ENCRYPTION_KEYS = []
    agent, _ = agent_create(name="dev-bot")
    derived = StringIO()
    call_command("generate_encryption_key", "--derived", stdout=derived)

    settings.COUNTERSIGN_ENCRYPTION_KEYS = [generate_key(), derived.getvalue().strip()]
    rotate()
    settings.COUNTERSIGN_ENCRYPTION_KEYS = settings.COUNTERSIGN_ENCRYPTION_KEYS[:1]

    assert Agent.objects.get(pk=agent.pk).webhook_secret == agent.webhook_secret


def test_generate_encryption_key_prints_a_key_that_encrypts_and_decrypts(settings):
    out = StringIO()
    call_command("generate_encryption_key", stdout=out)
    settings.COUNTERSIGN_ENCRYPTION_KEYS = [out.getvalue().strip()]

    assert decrypt(encrypt("whsec_abc")) == "whsec_abc"


def manage_check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "COUNTERSIGN_SECRET_KEY": "a-production-secret-key-for-this-test", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_encryption_keys_refuses_to_start():
    result = manage_check(COUNTERSIGN_PRODUCTION="true")

    assert result.returncode != 0
    assert "ImproperlyConfigured: COUNTERSIGN_ENCRYPTION_KEYS must be set in production" in result.stderr
    assert "generate_encryption_key" in result.stderr


def test_production_with_encryption_keys_starts():
    result = manage_check(
        COUNTERSIGN_PRODUCTION="true", COUNTERSIGN_ENCRYPTION_KEYS=f"{generate_key()},{generate_key()}"
    )

    assert result.returncode == 0, result.stderr


def test_a_malformed_encryption_key_refuses_to_start_without_echoing_it():
    result = manage_check(COUNTERSIGN_ENCRYPTION_KEYS=f"{generate_key()},not-a-fernet-key")

    assert result.returncode != 0
    assert "COUNTERSIGN_ENCRYPTION_KEYS: key 2 is not a Fernet key" in result.stderr
    assert "not-a-fernet-key" not in result.stderr
