"""Slack interactive approvals, against a stand-in for Slack's Web API and with payloads signed as Slack signs them.

Celery runs the outbox tasks eagerly (the same tasks a worker runs); the Web API is a real HTTP
server on loopback (tests/slack_standin.py) that records every call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client

from approvals.models import ActionRequest, QueueNotification, ReviewerGroupNotifications, SlackMessage, Vote
from approvals.notifications import queue_notifications_create
from approvals.services import action_request_decide, action_requests_expire_due
from approvals.tasks import deliver_due_queue_notifications
from integrations.models import SlackIdentity
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory
from tests.helpers import PASSWORD, submit
from tests.slack_standin import (
    BOT_TOKEN,
    CHANNEL_ID,
    SIGNING_SECRET,
    TEAM_ID,
    button_click,
    reject_submission,
    signed_interaction,
    slack_standin,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

INTERACTIONS = "/integrations/slack/interactions"


@pytest.fixture
def slack(settings):
    with slack_standin() as standin:
        settings.COUNTERSIGN_SLACK_API_URL = standin.api_url
        settings.COUNTERSIGN_PUBLIC_URL = "https://countersign.example"
        yield standin


def slack_app(group: Group | None = None) -> ReviewerGroupNotifications:
    return ReviewerGroupNotifications.objects.create(
        group=group, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_channel=CHANNEL_ID
    )


def link(user, slack_user_id: str) -> None:
    SlackIdentity.objects.create(team_id=TEAM_ID, slack_user_id=slack_user_id, user=user)


def post_interaction(client, payload, **sign):
    body, headers = signed_interaction(payload, **sign)
    return client.post(INTERACTIONS, data=body, content_type="application/x-www-form-urlencoded", **headers)


def posted(slack, request_id) -> dict:
    """The chat.postMessage call that posted this request."""
    matching = [c.args for c in slack.of("chat.postMessage") if str(request_id) in json.dumps(c.args)]
    assert len(matching) == 1, slack.calls
    return matching[0]


def last_update_text(slack) -> str:
    updates = slack.of("chat.update")
    assert updates, "no chat.update call"
    return json.dumps(updates[-1].args["blocks"])


def ephemerals(slack, user_id: str) -> list[str]:
    return [c.args["text"] for c in slack.of("chat.postEphemeral") if c.args["user"] == user_id]


def test_a_new_request_is_posted_with_buttons_and_its_agent_text_escaped(
    api, default_policies, slack, django_capture_on_commit_callbacks
):
    slack_app()
    body = submit(
        api,
        on_commit=django_capture_on_commit_callbacks,
        summary="Refund <!channel> & <https://evil.example|click here>",
    )

    message = posted(slack, body["id"])
    assert message["channel"] == CHANNEL_ID
    assert slack.of("chat.postMessage")[0].token == BOT_TOKEN
    rendered = json.dumps(message["blocks"])
    assert "<!channel>" not in rendered and "<https://evil.example" not in rendered
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;" in rendered
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Reject", "Open the card"]
    assert buttons[0]["value"] == f"{body['id']}:1"
    assert buttons[2]["url"] == f"https://countersign.example/queue/requests/{body['id']}/"
    stored = SlackMessage.objects.get(request_id=body["id"])
    assert stored.channel == CHANNEL_ID and stored.ts
    assert ActionRequest.objects.get(pk=body["id"]).slack_announced


def test_approve_from_slack_decides_as_the_linked_reviewer_and_updates_the_message(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_interaction(
            client, button_click(posted(slack, body["id"]), "countersign_approve", user_id="UALICE")
        )

    assert response.status_code == 200
    request = ActionRequest.objects.get(pk=body["id"])
    assert request.status == "approved"
    assert (request.decision.reviewer_id, request.decision.surface) == (alice.pk, "slack")
    assert "Approved by alice" in last_update_text(slack)
    assert "countersign_approve" not in last_update_text(slack)  # the buttons are gone
    assert ephemerals(slack, "UALICE") == ["You approved the request."]


def test_a_double_click_or_a_slack_retry_makes_one_decision(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    body = submit(api, on_commit=django_capture_on_commit_callbacks)
    click, headers = signed_interaction(
        button_click(posted(slack, body["id"]), "countersign_approve", user_id="UALICE")
    )

    first = client.post(INTERACTIONS, data=click, content_type="application/x-www-form-urlencoded", **headers)
    retry = client.post(
        INTERACTIONS,
        data=click,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_RETRY_NUM="1",
        **headers,
    )

    assert (first.status_code, retry.status_code) == (200, 200)
    request = ActionRequest.objects.get(pk=body["id"])
    assert request.status == "approved"
    assert ActionRequest.objects.filter(decision__isnull=False).count() == 1
    answers = ephemerals(slack, "UALICE")
    assert answers[0] == "You approved the request."
    assert answers[1] == "Not approved: Already decided by alice: this request was approved."


def test_a_slack_user_who_is_not_linked_gets_a_link_and_nothing_changes(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    post_interaction(client, button_click(posted(slack, body["id"]), "countersign_approve", user_id="UNEW"))

    assert ActionRequest.objects.get(pk=body["id"]).status == "pending"
    (answer,) = ephemerals(slack, "UNEW")
    assert "not linked" in answer
    link_url = answer.split(": ", 1)[1]
    assert link_url.startswith("https://countersign.example/integrations/slack/link?t=")

    # The reviewer opens it signed in: GET shows what would be linked, POST links it.
    client.login(username="alice", password=PASSWORD)
    path = link_url.removeprefix("https://countersign.example")
    page = client.get(path)
    assert page.status_code == 200 and b"UNEW" in page.content
    assert not SlackIdentity.objects.exists()
    token = path.split("t=", 1)[1]
    assert client.post("/integrations/slack/link", {"t": token}).status_code == 302
    assert SlackIdentity.objects.get().user == alice

    post_interaction(client, button_click(posted(slack, body["id"]), "countersign_approve", user_id="UNEW"))
    assert ActionRequest.objects.get(pk=body["id"]).decision.reviewer == alice


def test_a_forged_link_token_links_nothing(client, alice):
    client.login(username="alice", password=PASSWORD)
    assert (
        client.post("/integrations/slack/link", {"t": "eyJ0ZWFtIjoiVDEiLCJ1c2VyIjoiVTEifQ:forged"}).status_code == 400
    )
    assert not SlackIdentity.objects.exists()


def test_a_reviewer_outside_the_group_is_refused_and_nothing_changes(
    client, default_policies, alice, finance, slack, django_capture_on_commit_callbacks
):
    group = Group.objects.get(name="finance")
    slack_app(group)
    link(alice, "UALICE")  # alice reviews, but not for finance
    with django_capture_on_commit_callbacks(execute=True):
        request = PendingRequestFactory(reviewer_group=group)
        queue_notifications_create(request=request, kind="new", now=request.created_at)
    message = posted(slack, request.pk)

    post_interaction(client, button_click(message, "countersign_approve", user_id="UALICE"))
    post_interaction(client, button_click(message, "countersign_reject", user_id="UALICE"))

    request.refresh_from_db()
    assert request.status == "pending" and not Vote.objects.exists()
    assert not slack.of("views.open")
    assert all("not a reviewer of this request's group" in text for text in ephemerals(slack, "UALICE"))
    assert len(ephemerals(slack, "UALICE")) == 2


def test_separation_of_duties_holds_in_slack(
    client, api, agent, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    agent.owner = alice
    agent.save()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    post_interaction(client, button_click(posted(slack, body["id"]), "countersign_approve", user_id="UALICE"))

    assert ActionRequest.objects.get(pk=body["id"]).status == "pending"
    (answer,) = ephemerals(slack, "UALICE")
    assert answer.startswith("Not approved:") and "separation of duties" in answer


def test_a_quorum_vote_from_slack_counts_once_and_the_message_shows_it(
    client, api, default_policies, alice, bob, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    request = PendingRequestFactory(required_approvals=2)
    with django_capture_on_commit_callbacks(execute=True):
        queue_notifications_create(request=request, kind="new", now=request.created_at)
    message = posted(slack, request.pk)

    with django_capture_on_commit_callbacks(execute=True):
        post_interaction(client, button_click(message, "countersign_approve", user_id="UALICE"))
    request.refresh_from_db()
    assert request.status == "pending"
    assert Vote.objects.get(request=request).surface == "slack"
    assert ephemerals(slack, "UALICE") == ["Your approval is recorded: 1 of 2 needed."]
    assert "1 of 2 approvals so far" in last_update_text(slack)

    with django_capture_on_commit_callbacks(execute=True):
        action_request_decide(request_id=request.pk, reviewer=bob, approve=True, seen_revision=request.revision)
    request.refresh_from_db()
    assert request.status == "approved"
    assert "Approved by bob" in last_update_text(slack)


def test_reject_opens_a_modal_and_its_submission_rejects_with_the_reason(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    post_interaction(client, button_click(posted(slack, body["id"]), "countersign_reject", user_id="UALICE"))
    (opened,) = slack.of("views.open")
    assert opened.args["trigger_id"] == "trigger-1"
    view = opened.args["view"]
    assert ActionRequest.objects.get(pk=body["id"]).status == "pending"

    empty = post_interaction(client, reject_submission(view, user_id="UALICE", category="wrong_recipient", reason=" "))
    assert empty.status_code == 200
    assert empty.json()["response_action"] == "errors" and "reason" in empty.json()["errors"]
    assert ActionRequest.objects.get(pk=body["id"]).status == "pending"

    with django_capture_on_commit_callbacks(execute=True):
        done = post_interaction(
            client, reject_submission(view, user_id="UALICE", category="wrong_recipient", reason="Wrong customer")
        )
    assert done.status_code == 200 and done.content == b""
    decision = ActionRequest.objects.get(pk=body["id"]).decision
    assert (decision.outcome, decision.reason_category, decision.reason, decision.surface) == (
        "rejected",
        "wrong_recipient",
        "Wrong customer",
        "slack",
    )
    assert "Rejected by alice" in last_update_text(slack) and "Wrong customer" in last_update_text(slack)


def test_a_decision_on_the_web_updates_the_slack_message_in_place(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)
    message = SlackMessage.objects.get(request_id=body["id"])

    client.login(username="alice", password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/queue/requests/{body['id']}/decide",
            data=json.dumps({"decision": "approve", "revision": 1, "params": {"to": "other@example.org"}}),
            content_type="application/json",
        )
    assert response.status_code == 200

    (update,) = slack.of("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (message.channel, message.ts)
    assert "Approved by alice" in last_update_text(slack) and "edited" in last_update_text(slack)
    row = QueueNotification.objects.get(request_id=body["id"], kind="update")
    assert row.state == "delivered"


def test_a_failed_update_stays_in_the_outbox_and_is_retried(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)
    slack.failures.append(("chat.update", "ratelimited"))

    with django_capture_on_commit_callbacks(execute=True):
        action_request_decide(request_id=body["id"], reviewer=alice, approve=True)
    row = QueueNotification.objects.get(request_id=body["id"], kind="update")
    assert row.state == "pending" and "ratelimited" in row.last_error

    with time_machine.travel(row.next_attempt_at, tick=True):
        deliver_due_queue_notifications()
    row.refresh_from_db()
    assert row.state == "delivered" and row.attempts == 2
    assert "Approved by alice" in last_update_text(slack)


def test_expiry_updates_the_message(api, default_policies, slack, django_capture_on_commit_callbacks):
    slack_app()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)
    request = ActionRequest.objects.get(pk=body["id"])

    with (
        time_machine.travel(request.expires_at + timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        action_requests_expire_due()
    assert "Expired at" in last_update_text(slack)


def test_forged_or_stale_signatures_are_refused_and_change_nothing(
    client, api, default_policies, alice, slack, django_capture_on_commit_callbacks
):
    slack_app()
    link(alice, "UALICE")
    body = submit(api, on_commit=django_capture_on_commit_callbacks)
    click = button_click(posted(slack, body["id"]), "countersign_approve", user_id="UALICE")

    forged = post_interaction(client, click, secret="not-the-signing-secret")
    stale = post_interaction(client, click, timestamp=int(time.time()) - 6 * 60)
    unsigned = client.post(INTERACTIONS, data="payload={}", content_type="application/x-www-form-urlencoded")
    garbage_time = client.post(
        INTERACTIONS,
        data="payload={}",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP="soon",
        HTTP_X_SLACK_SIGNATURE="v0=00",
    )

    for response in (forged, stale, unsigned, garbage_time):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    assert ActionRequest.objects.get(pk=body["id"]).status == "pending"
    assert not slack.of("chat.postEphemeral")


def test_a_signed_payload_of_the_wrong_shape_is_a_clear_400(client, slack):
    slack_app()
    for payload in ({"type": "block_actions"}, {"type": "block_actions", "actions": "x", "user": 3}):
        response = post_interaction(client, payload)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_payload"
    raw = b"payload=%7Bnope"
    timestamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + raw, hashlib.sha256).hexdigest()
    not_json = client.post(
        INTERACTIONS,
        data=raw,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=f"v0={digest}",
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_payload"


def test_with_email_matching_a_slack_user_is_the_reviewer_with_that_verified_email(
    client, api, default_policies, slack, settings, django_capture_on_commit_callbacks
):
    dana = reviewer_create(username="dana", password=PASSWORD, email="dana@example.org")
    settings.COUNTERSIGN_SLACK_MATCH_EMAIL = True
    slack.emails["UDANA"] = "Dana@example.org"
    slack_app()
    body = submit(api, on_commit=django_capture_on_commit_callbacks)

    post_interaction(client, button_click(posted(slack, body["id"]), "countersign_approve", user_id="UDANA"))

    assert ActionRequest.objects.get(pk=body["id"]).decision.reviewer == dana


def test_the_admin_never_shows_the_apps_secrets_and_keeps_them_when_left_blank(admin_user):
    app = slack_app()
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/approvals/reviewergroupnotifications/{app.pk}/change/"

    page = client.get(url).content.decode()
    assert BOT_TOKEN not in page and SIGNING_SECRET not in page
    form = {
        "notify_on_new": "on",
        "remind_before_seconds": "0",
        "email_to": "",
        "slack_webhook_url": "",
        "slack_channel": "C0OTHER",
        "slack_bot_token": "",
        "slack_signing_secret": "",
    }
    assert client.post(url, form).status_code == 302
    app.refresh_from_db()
    assert (app.slack_channel, app.slack_bot_token, app.slack_signing_secret) == ("C0OTHER", BOT_TOKEN, SIGNING_SECRET)

    assert client.post(url, {**form, "slack_channel": ""}).status_code == 302
    app.refresh_from_db()
    assert (app.slack_channel, app.slack_bot_token, app.slack_signing_secret) == ("", "", "")
