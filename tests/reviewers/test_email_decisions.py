"""One-click decisions from a notification email: a link opens a confirm page; only its reviewer's POST decides, once."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from approvals.models import ActionRequest, QueueNotification, ReviewerGroupNotifications
from approvals.notifications import action_request_notify
from reviewers.services import reviewer_create
from tests.factories import PendingRequestFactory
from tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_team(settings):
    settings.COUNTERSIGN_PUBLIC_URL = "https://countersign.example"
    fay = reviewer_create(username="fay", password=PASSWORD, group_name="finance", email="fay@example.org")
    gus = reviewer_create(username="gus", password=PASSWORD, group_name="finance", email="gus@example.org")
    group = Group.objects.get(name="finance")
    ReviewerGroupNotifications.objects.create(
        group=group, email_members=True, email_to="finance-list@example.org, fay@example.org"
    )
    return group, fay, gus


def links_in(message) -> dict[str, str]:
    """{"approve": path?query, "reject": ...} from a notification email's body."""
    found = dict(re.findall(r"^(Approve|Reject): (\S+)$", message.body, flags=re.MULTILINE))
    return {k.lower(): urlsplit(v).path + "?" + urlsplit(v).query for k, v in found.items()}


def notified(group, mailoutbox, **request_fields) -> tuple[ActionRequest, dict]:
    request = PendingRequestFactory(reviewer_group=group, **request_fields)
    action_request_notify(request_id=request.pk, kind="new")
    return request, {message.to[0]: message for message in mailoutbox}


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.login(username=user.username, password=PASSWORD)
    return client


def test_each_member_gets_their_own_links_and_a_listed_address_gets_none(finance_team, mailoutbox):
    group, fay, _gus = finance_team
    request, by_address = notified(group, mailoutbox)

    assert sorted(by_address) == ["fay@example.org", "finance-list@example.org", "gus@example.org"]
    assert [m.to for m in mailoutbox if "finance-list@example.org" in m.to] == [["finance-list@example.org"]]
    assert links_in(by_address["finance-list@example.org"]) == {}
    fay_links, gus_links = links_in(by_address["fay@example.org"]), links_in(by_address["gus@example.org"])
    assert set(fay_links) == {"approve", "reject"}
    assert fay_links["approve"].startswith("/queue/email/?t=") and fay_links["approve"] != gus_links["approve"]
    assert QueueNotification.objects.get(request=request, reviewer=fay).state == "delivered"


def test_opening_a_link_decides_nothing_signed_out_or_in(finance_team, mailoutbox, client):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    approve = links_in(by_address["fay@example.org"])["approve"]

    scanner = client.get(approve)  # a mail scanner follows the link, with no session
    assert scanner.status_code == 302 and scanner["Location"].startswith("/accounts/login/")
    page = signed_in(fay).get(approve)
    assert page.status_code == 200
    assert b"Approve this request as shown?" in page.content
    assert page["Cache-Control"] == "no-store" and page["Referrer-Policy"] == "no-referrer"

    request.refresh_from_db()
    assert request.status == "pending"
    assert QueueNotification.objects.get(request=request, reviewer=fay).link_used_at is None


def test_confirming_decides_once_as_that_reviewer_through_the_email_surface(finance_team, mailoutbox):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    approve = links_in(by_address["fay@example.org"])["approve"]
    token = approve.split("t=", 1)[1]
    fay_client = signed_in(fay)

    first = fay_client.post("/queue/email/", {"t": token})
    again = fay_client.post("/queue/email/", {"t": token})

    assert first.status_code == 200 and b"Approved." in first.content
    assert again.status_code == 409 and b"used already" in again.content
    request.refresh_from_db()
    assert request.status == "approved"
    assert (request.decision.reviewer, request.decision.surface) == (fay, "email")
    assert QueueNotification.objects.get(request=request, reviewer=fay).link_used_at is not None


def test_a_forwarded_link_does_not_let_another_reviewer_decide(finance_team, mailoutbox):
    group, _fay, gus = finance_team
    request, by_address = notified(group, mailoutbox)
    fays_link = links_in(by_address["fay@example.org"])["approve"]

    gus_client = signed_in(gus)
    page = gus_client.get(fays_link)
    post = gus_client.post("/queue/email/", {"t": fays_link.split("t=", 1)[1]})

    assert page.status_code == 403 and b"sent to another reviewer" in page.content
    assert post.status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_an_expired_link_decides_nothing(finance_team, mailoutbox, settings):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox, expires_at=timezone.now() + timedelta(days=3))
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]

    with time_machine.travel(timezone.now() + timedelta(seconds=settings.COUNTERSIGN_EMAIL_LINK_MAX_AGE_SECONDS + 5)):
        response = signed_in(fay).post("/queue/email/", {"t": token})

    assert response.status_code == 422 and b"This link has expired" in response.content
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_tampered_link_is_refused(finance_team, mailoutbox):
    group, fay, _ = finance_team
    _request, by_address = notified(group, mailoutbox)
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]

    response = signed_in(fay).post("/queue/email/", {"t": token[:-3] + "abc"})

    assert response.status_code == 422 and b"not one Countersign sent" in response.content


def test_the_reject_link_asks_for_a_reason_and_a_refused_post_leaves_the_link_unused(finance_team, mailoutbox):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    token = links_in(by_address["fay@example.org"])["reject"].split("t=", 1)[1]
    fay_client = signed_in(fay)

    no_reason = fay_client.post("/queue/email/", {"t": token, "reason_category": "wrong_recipient", "reason": ""})
    assert no_reason.status_code == 422
    assert QueueNotification.objects.get(request=request, reviewer=fay).link_used_at is None

    done = fay_client.post(
        "/queue/email/", {"t": token, "reason_category": "wrong_recipient", "reason": "Not this customer"}
    )
    assert done.status_code == 200
    request.refresh_from_db()
    assert (request.status, request.decision.reason, request.decision.surface) == (
        "rejected",
        "Not this customer",
        "email",
    )


def test_a_link_for_an_older_revision_is_refused(finance_team, mailoutbox):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]
    ActionRequest.objects.filter(pk=request.pk).update(revision=2)  # the agent amended it after the email

    response = signed_in(fay).post("/queue/email/", {"t": token})

    assert response.status_code == 409
    request.refresh_from_db()
    assert request.status == "pending"
    assert QueueNotification.objects.get(request=request, reviewer=fay).link_used_at is None


def test_the_confirming_post_needs_the_csrf_token(finance_team, mailoutbox):
    group, _fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]
    strict = Client(enforce_csrf_checks=True)
    strict.login(username="fay", password=PASSWORD)

    assert strict.post("/queue/email/", {"t": token}).status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


def test_separation_of_duties_holds_for_an_email_link(finance_team, mailoutbox):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    request.agent.owner = fay
    request.agent.save()
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]

    response = signed_in(fay).post("/queue/email/", {"t": token})

    assert response.status_code == 403 and b"separation of duties" in response.content
    request.refresh_from_db()
    assert request.status == "pending"
    assert QueueNotification.objects.get(request=request, reviewer=fay).link_used_at is None


def test_a_member_who_left_the_group_cannot_use_their_link(finance_team, mailoutbox):
    group, fay, _ = finance_team
    request, by_address = notified(group, mailoutbox)
    token = links_in(by_address["fay@example.org"])["approve"].split("t=", 1)[1]
    fay.groups.remove(group)

    response = signed_in(fay).post("/queue/email/", {"t": token})

    assert response.status_code in (403, 404)
    request.refresh_from_db()
    assert request.status == "pending"
