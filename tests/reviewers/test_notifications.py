"""Reviewer groups are told about new and nearly-due requests by email and Slack-compatible webhook.

Celery runs the tasks eagerly here (the same tasks a worker runs); email goes to Django's
locmem backend; the Slack side is a real HTTP server on loopback.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals.models import ActionRequest, ReviewerGroupNotifications
from approvals.notifications import action_request_notify, action_requests_remind_due, slack_escape
from approvals.services import action_request_decide, action_requests_expire_due
from approvals.tasks import remind_due_requests
from reviewers.services import reviewer_create
from tests.factories import AgentFactory, PendingRequestFactory, PolicyFactory
from tests.helpers import PASSWORD, run_at_once, submission_body, submit
from tests.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

HOSTILE_SUMMARY = 'Pay <script>alert("x")</script> & <!channel> <https://evil.example|click> <b>now</b>\nSecond line'


@pytest.fixture
def public_url(settings):
    settings.COUNTERSIGN_PUBLIC_URL = "https://countersign.example.com"


@pytest.fixture
def slack():
    with webhook_receiver() as receiver:
        yield receiver


def slack_texts(receiver):
    return [json.loads(r.body)["text"] for r in receiver.received]


# --- a new request ---------------------------------------------------------------------------


def test_new_request_emails_the_configured_addresses_in_plain_text(
    api, default_policies, public_url, mailoutbox, django_capture_on_commit_callbacks
):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org,\nlead@example.org")

    submit(api, on_commit=django_capture_on_commit_callbacks, summary=HOSTILE_SUMMARY)

    (message,) = mailoutbox
    assert message.to == ["oncall@example.org", "lead@example.org"]
    assert message.subject == "[Countersign] Review: send_external_email from support-bot"
    assert message.content_subtype == "plain"
    assert getattr(message, "alternatives", []) == []
    assert "Action: send_external_email" in message.body
    assert "Agent: support-bot" in message.body
    # Plain text: the agent's markup arrives as the characters it typed, on one line, never as HTML.
    assert f"Summary: {' '.join(HOSTILE_SUMMARY.split())}" in message.body
    assert "&lt;" not in message.body
    assert "left (deadline " in message.body
    assert "Review it: https://countersign.example.com/queue/" in message.body


def test_new_request_posts_escaped_text_to_the_slack_webhook(
    api, default_policies, public_url, slack, django_capture_on_commit_callbacks
):
    ReviewerGroupNotifications.objects.create(slack_webhook_url=slack.url)

    submit(api, on_commit=django_capture_on_commit_callbacks, summary=HOSTILE_SUMMARY)

    (received,) = slack.received
    assert received.path == "/hooks/countersign"
    assert received.headers["content-type"] == "application/json"
    body = json.loads(received.body)
    assert set(body) == {"text"}
    text = body["text"]
    assert 'Summary: Pay &lt;script&gt;alert("x")&lt;/script&gt; &amp; &lt;!channel&gt; ' in text
    assert "&lt;https://evil.example|click&gt; &lt;b&gt;now&lt;/b&gt; Second line" in text
    # The only unescaped angle brackets are our own link to the queue.
    assert text.count("<") == 1 and text.count(">") == 1
    assert text.endswith("<https://countersign.example.com/queue/|Open the queue>")
    assert "Action: send_external_email" in text
    assert "Agent: support-bot" in text


def test_slack_escape_escapes_exactly_the_three_control_characters():
    assert slack_escape("a & b < c > d \"e\" 'f'") == "a &amp; b &lt; c &gt; d \"e\" 'f'"


def test_hostile_agent_name_is_escaped_in_slack_and_plain_in_email(slack, mailoutbox):
    ReviewerGroupNotifications.objects.create(slack_webhook_url=slack.url, email_to="oncall@example.org")
    request = PendingRequestFactory(agent=AgentFactory(name="<img src=x onerror=alert(1)>&bot"))

    action_request_notify(request_id=request.pk, kind="new")

    assert "Agent: &lt;img src=x onerror=alert(1)&gt;&amp;bot" in slack_texts(slack)[0]
    assert "Agent: <img src=x onerror=alert(1)>&bot" in mailoutbox[0].body
    assert "\n" not in mailoutbox[0].subject


def test_nothing_is_sent_in_the_request_thread(api, default_policies, mailoutbox, django_capture_on_commit_callbacks):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/v1/actions/", data=submission_body(), format="json")

    assert response.status_code == 201
    assert mailoutbox == []  # queued after commit, sent by the task
    assert callbacks


def test_a_request_that_runs_unattended_notifies_nobody(
    api, default_policies, mailoutbox, django_capture_on_commit_callbacks
):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/actions/", data=submission_body(action_type="search_web"), format="json")

    assert response.json()["status"] == "allowed"
    assert mailoutbox == []


def test_notify_on_new_off_sends_nothing_for_new_requests(mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", notify_on_new=False)
    request = PendingRequestFactory()

    assert action_request_notify(request_id=request.pk, kind="new") == []
    assert mailoutbox == []


def test_a_request_decided_before_the_task_ran_is_not_announced(alice, mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org")
    request = PendingRequestFactory()
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    assert action_request_notify(request_id=request.pk, kind="new") == []
    assert mailoutbox == []


def test_members_with_an_email_address_are_emailed_when_the_group_asks(mailoutbox):
    group = Group.objects.create(name="finance")
    reviewer_create(username="fay", password=PASSWORD, group_name="finance", email="fay@example.org")
    reviewer_create(username="noemail", password=PASSWORD, group_name="finance")
    reviewer_create(username="other", password=PASSWORD, group_name="legal", email="other@example.org")
    ReviewerGroupNotifications.objects.create(group=group, email_members=True, email_to="finance@example.org")

    action_request_notify(request_id=PendingRequestFactory(reviewer_group=group).pk, kind="new")

    # The listed address gets one email; each member gets their own, with their one-click links.
    assert [message.to for message in mailoutbox] == [["finance@example.org"], ["fay@example.org"]]
    assert all("Reviewer group: finance" in message.body for message in mailoutbox)
    assert "Approve: " not in mailoutbox[0].body and "Approve: " in mailoutbox[1].body


def test_a_failing_channel_does_not_stop_the_other(settings, mailoutbox):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    ReviewerGroupNotifications.objects.create(
        slack_webhook_url="http://127.0.0.1:9/hook", email_to="oncall@example.org"
    )

    sent = action_request_notify(request_id=PendingRequestFactory().pk, kind="new")

    assert sent == ["email"]  # the loopback webhook was refused by the SSRF check, the email went out
    assert len(mailoutbox) == 1


def test_slack_posts_to_private_addresses_are_refused_without_a_connection(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False
    with webhook_receiver() as receiver:
        ReviewerGroupNotifications.objects.create(slack_webhook_url=receiver.url)

        assert action_request_notify(request_id=PendingRequestFactory().pk, kind="new") == []

        assert receiver.received == []


# --- group routing ---------------------------------------------------------------------------


def test_a_group_routed_request_notifies_only_that_groups_channels(
    api, public_url, mailoutbox, django_capture_on_commit_callbacks
):
    finance, legal = Group.objects.create(name="finance"), Group.objects.create(name="legal")
    PolicyFactory(action_pattern="wire_transfer", mode="approve", reviewer_group=finance)
    with webhook_receiver() as finance_slack, webhook_receiver() as legal_slack, webhook_receiver() as everyone_slack:
        ReviewerGroupNotifications.objects.create(
            group=finance, email_to="finance@example.org", slack_webhook_url=finance_slack.url
        )
        ReviewerGroupNotifications.objects.create(
            group=legal, email_to="legal@example.org", slack_webhook_url=legal_slack.url
        )
        ReviewerGroupNotifications.objects.create(email_to="everyone@example.org", slack_webhook_url=everyone_slack.url)

        submit(api, on_commit=django_capture_on_commit_callbacks, action_type="wire_transfer")

        assert [m.to for m in mailoutbox] == [["finance@example.org"]]
        assert len(finance_slack.received) == 1
        assert "Reviewer group: finance" in slack_texts(finance_slack)[0]
        assert legal_slack.received == [] and everyone_slack.received == []


def test_an_unrouted_request_notifies_the_everyone_row_only(mailoutbox):
    ReviewerGroupNotifications.objects.create(group=Group.objects.create(name="finance"), email_to="f@example.org")
    ReviewerGroupNotifications.objects.create(email_to="everyone@example.org")

    action_request_notify(request_id=PendingRequestFactory().pk, kind="new")

    assert [m.to for m in mailoutbox] == [["everyone@example.org"]]


def test_an_escalated_request_notifies_the_escalation_group(mailoutbox, django_capture_on_commit_callbacks):
    first, second = Group.objects.create(name="first-line"), Group.objects.create(name="second-line")
    ReviewerGroupNotifications.objects.create(group=first, email_to="first@example.org")
    ReviewerGroupNotifications.objects.create(group=second, email_to="second@example.org")
    request = PendingRequestFactory(
        reviewer_group=first,
        escalation_group=second,
        on_expiry="escalate",
        pending_ttl_seconds=3600,
        expires_at=timezone.now() - timedelta(seconds=1),
        reminded_at=timezone.now() - timedelta(minutes=5),
    )

    with django_capture_on_commit_callbacks(execute=True):
        action_requests_expire_due()

    request.refresh_from_db()
    assert request.reviewer_group == second
    assert request.reminded_at is None  # a fresh deadline gets its own reminder
    assert [m.to for m in mailoutbox] == [["second@example.org"]]


# --- deadline reminders ------------------------------------------------------------------------


def test_reminder_is_sent_once_even_when_the_task_runs_twice(public_url, slack, mailoutbox):
    ReviewerGroupNotifications.objects.create(
        email_to="oncall@example.org", slack_webhook_url=slack.url, remind_before_seconds=600, notify_on_new=False
    )
    due = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=5), summary="Refund Jane")

    assert remind_due_requests() == 1
    assert remind_due_requests() == 0

    (message,) = mailoutbox
    assert message.subject == f"[Countersign] Reminder: send_external_email from {due.agent.name}"
    assert "Reminder: a request is close to its deadline" in message.body
    assert "Summary: Refund Jane" in message.body
    assert "min left" in message.body
    assert len(slack.received) == 1
    assert "Reminder" in slack_texts(slack)[0]
    due.refresh_from_db()
    assert due.reminded_at is not None


def test_requests_outside_the_reminder_window_are_not_reminded(mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", remind_before_seconds=600)
    later = PendingRequestFactory(expires_at=timezone.now() + timedelta(hours=2))
    PendingRequestFactory(expires_at=timezone.now() - timedelta(seconds=1))  # already past its deadline

    assert remind_due_requests() == 0
    assert mailoutbox == []

    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=55)):
        assert remind_due_requests() == 1
    assert ActionRequest.objects.get(pk=later.pk).reminded_at is not None


def test_no_reminder_without_remind_before_seconds(mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", remind_before_seconds=0)
    PendingRequestFactory(expires_at=timezone.now() + timedelta(seconds=30))

    assert remind_due_requests() == 0
    assert mailoutbox == []


def test_reminders_follow_group_routing(mailoutbox):
    finance, legal = Group.objects.create(name="finance"), Group.objects.create(name="legal")
    ReviewerGroupNotifications.objects.create(group=finance, email_to="finance@example.org", remind_before_seconds=600)
    ReviewerGroupNotifications.objects.create(group=legal, email_to="legal@example.org", remind_before_seconds=60)
    soon = timezone.now() + timedelta(minutes=5)
    PendingRequestFactory(reviewer_group=finance, expires_at=soon)
    PendingRequestFactory(reviewer_group=legal, expires_at=soon)  # legal wants a reminder 1 minute before only
    PendingRequestFactory(expires_at=soon)  # unrouted: no "everyone" row

    assert remind_due_requests() == 1
    assert [m.to for m in mailoutbox] == [["finance@example.org"]]


def test_a_decided_request_is_not_reminded(alice, mailoutbox):
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", remind_before_seconds=600)
    request = PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=5))
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)

    assert remind_due_requests() == 0
    assert mailoutbox == []


def test_beat_runs_the_reminder_task():
    entry = django_settings.CELERY_BEAT_SCHEDULE["remind-due-requests"]

    assert entry["task"] == "approvals.tasks.remind_due_requests"
    assert entry["schedule"] == float(django_settings.COUNTERSIGN_REMINDER_INTERVAL_SECONDS)


# --- configuration -------------------------------------------------------------------------------


def test_configuration_refuses_a_bad_address_and_a_private_webhook(settings):
    settings.COUNTERSIGN_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(ValidationError) as bad_email:
        ReviewerGroupNotifications(email_to="ok@example.org, not-an-address").full_clean()
    with pytest.raises(ValidationError) as private:
        ReviewerGroupNotifications(slack_webhook_url="http://10.0.0.5/hook").full_clean()

    assert "not-an-address" in str(bad_email.value)
    assert "private" in str(private.value)


def test_only_one_everyone_row(db):
    ReviewerGroupNotifications.objects.create(email_to="a@example.org")

    with pytest.raises(ValidationError, match="everyone"):
        ReviewerGroupNotifications(email_to="b@example.org").full_clean()


# --- hostile agent text, and racing beats ----------------------------------------------------------

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<math><mtext><script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "<style>@import 'javascript:alert(1)'</style>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<form action=javascript:alert(1)><input type=submit>",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)>",
    "<marquee onstart=alert(1)>",
    "{{7*7}} ${7*7} <%= 7*7 %>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<!channel> <!here> <!everyone>",
    "<@U024BE7LH> <#C024BE7LR>",
    "<https://evil.example|Open the queue>",
    "<mailto:evil@example.org|support>",
    "*bold* _italic_ ~strike~ `code` ```block```",
    "[click](javascript:alert(1))",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "line one\r\nBcc: victim@example.org\r\n\r\nbody",
    "\u202eevil\u202c <b>bidi</b>",
]


def _unescaped_markup(text: str) -> str:
    """What is left of Slack's control characters once our own queue link is removed."""
    text = text.replace("<https://countersign.example.com/queue/|Open the queue>", "")
    for entity in ("&amp;", "&lt;", "&gt;"):
        text = text.replace(entity, "")
    return "".join(ch for ch in text if ch in "<>&")


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_hostile_agent_text_stays_text_in_email_and_slack(payload, public_url, slack, mailoutbox):
    ReviewerGroupNotifications.objects.create(slack_webhook_url=slack.url, email_to="oncall@example.org")
    request = PendingRequestFactory(
        agent=AgentFactory(name=f"bot {payload}"[:120]), action_type=f"act {payload}"[:200], summary=payload
    )

    assert action_request_notify(request_id=request.pk, kind="new") == ["email", "slack"]

    (text,) = slack_texts(slack)
    assert _unescaped_markup(text) == ""
    (message,) = mailoutbox
    assert getattr(message, "alternatives", []) == [] and message.content_subtype == "plain"
    assert "\n" not in message.subject and "\r" not in message.subject
    assert f"Summary: {' '.join(payload.split())}\n" in message.body
    assert message.message()["Bcc"] is None  # agent line breaks never become headers


@pytest.mark.django_db(transaction=True)
def test_racing_beats_remind_each_request_once():
    ReviewerGroupNotifications.objects.create(email_to="oncall@example.org", remind_before_seconds=600)
    due = {PendingRequestFactory(expires_at=timezone.now() + timedelta(minutes=m)).pk for m in range(1, 6)}
    results = run_at_once(lambda _: action_requests_remind_due(), 4)

    assert [value for kind, value in results if kind != "ok"] == []
    claimed = [pk for _, pks in results for pk in pks]
    assert sorted(map(str, claimed)) == sorted(map(str, due))
    assert ActionRequest.objects.filter(pk__in=due, reminded_at__isnull=False).count() == 5
