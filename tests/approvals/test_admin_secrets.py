"""The admin never shows a secret in full: agents' webhook secrets, Slack webhook URLs and the outbox rows copying them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ReviewerGroupNotifications
from approvals.notifications import queue_notifications_create
from approvals.services import agent_create
from core.crypto import mask
from tests.factories import PendingRequestFactory

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/s3cr3tT0kenXXXXXXXXXXXX"
NEW_SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/n3wT0kenYYYYYYYYYYYYYYYY"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def group_form(**overrides) -> dict[str, str]:
    return {
        "group": "",
        "notify_on_new": "on",
        "remind_before_seconds": "0",
        "email_to": "oncall@example.org",
        "slack_webhook_url": "",
        "_save": "Save",
        **overrides,
    }


def test_the_agent_page_shows_the_webhook_secret_masked(staff):
    agent, _key = agent_create(name="mail-bot")

    page = staff.get(reverse("admin:approvals_agent_change", args=[agent.pk])).content.decode()

    assert agent.webhook_secret not in page
    assert agent.webhook_secret[6:20] not in page
    assert mask(agent.webhook_secret) in page
    assert mask(agent.webhook_secret).startswith("whsec_…")


def test_the_group_notifications_page_never_renders_the_slack_url(staff):
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)

    page = staff.get(reverse("admin:approvals_reviewergroupnotifications_change", args=[config.pk])).content.decode()

    assert "s3cr3tT0ken" not in page
    assert "saved: https://hooks.slack.com/…XXXX" in page


def test_saving_the_group_notifications_with_the_slack_field_empty_keeps_the_url(staff):
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)

    response = staff.post(
        reverse("admin:approvals_reviewergroupnotifications_change", args=[config.pk]), group_form(email_to="a@b.org")
    )

    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.email_to, config.slack_webhook_url) == ("a@b.org", SLACK_URL)


def test_typing_a_slack_url_in_the_admin_replaces_it(staff):
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)

    staff.post(
        reverse("admin:approvals_reviewergroupnotifications_change", args=[config.pk]),
        group_form(slack_webhook_url=NEW_SLACK_URL),
    )

    config.refresh_from_db()
    assert config.slack_webhook_url == NEW_SLACK_URL


def test_ticking_clear_in_the_admin_removes_the_slack_url(staff):
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)

    staff.post(
        reverse("admin:approvals_reviewergroupnotifications_change", args=[config.pk]),
        group_form(slack_webhook_url__clear="on"),
    )

    config.refresh_from_db()
    assert config.slack_webhook_url == ""


@pytest.mark.parametrize("typed", ["not a url", "http://10.0.0.5/hook"], ids=["malformed", "private"])
def test_a_slack_url_typed_in_the_admin_is_still_checked(staff, settings, typed):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    config = ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL)

    response = staff.post(
        reverse("admin:approvals_reviewergroupnotifications_change", args=[config.pk]),
        group_form(slack_webhook_url=typed),
    )

    assert response.status_code == 200  # the form again, with the error
    assert "errorlist" in response.content.decode()
    config.refresh_from_db()
    assert config.slack_webhook_url == SLACK_URL


def test_a_queue_notifications_slack_target_is_masked_and_its_email_target_shown(staff):
    ReviewerGroupNotifications.objects.create(slack_webhook_url=SLACK_URL, email_to="oncall@example.org")
    rows = queue_notifications_create(
        request=PendingRequestFactory(), kind="new", now=timezone.now(), deliver_after_commit=False
    )
    slack_row = next(row for row in rows if row.channel == "slack")
    email_row = next(row for row in rows if row.channel == "email")

    slack_page = staff.get(reverse("admin:approvals_queuenotification_change", args=[slack_row.pk])).content.decode()
    email_page = staff.get(reverse("admin:approvals_queuenotification_change", args=[email_row.pk])).content.decode()

    assert "s3cr3tT0ken" not in slack_page
    assert "https://hooks.slack.com/…XXXX" in slack_page
    assert "oncall@example.org" in email_page


def test_adding_group_notifications_in_the_admin_stores_the_typed_slack_url(staff):
    response = staff.post(
        reverse("admin:approvals_reviewergroupnotifications_add"), group_form(slack_webhook_url=SLACK_URL)
    )

    assert response.status_code == 302
    assert ReviewerGroupNotifications.objects.get().slack_webhook_url == SLACK_URL
