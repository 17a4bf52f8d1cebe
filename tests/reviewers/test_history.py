"""The decided history (/queue/history/): who may look (here and on a request's page), what it lists, its filters and search."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.models import ActionRequest, Status, Vote
from approvals.services import action_request_decide, action_requests_expire_due
from policies.services import policy_create
from tests.factories import AgentFactory, PendingRequestFactory
from tests.helpers import finished, history_html, report, row_ids, submit

pytestmark = pytest.mark.django_db


# --- who may look -------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_login(client):
    request = finished()

    for url in ("/queue/history/", f"/queue/requests/{request.pk}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_non_reviewer_is_refused_history_and_request_pages(client, charlie):
    request = finished(summary="secret plan")
    client.force_login(charlie)

    assert client.get("/queue/history/").status_code == 403
    assert client.get(f"/queue/requests/{request.pk}/").status_code == 403


def test_request_routed_to_another_group_is_invisible_to_outsiders(client, alice, finance):
    routed = finished(summary="finance only", reviewer_group=finance.groups.get())
    open_one = finished(summary="for everyone")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(open_one.pk)]
    assert client.get(f"/queue/requests/{routed.pk}/").status_code == 404


def test_request_routed_to_a_group_is_visible_to_its_members(client, finance):
    routed = finished(summary="finance only", reviewer_group=finance.groups.get())
    client.force_login(finance)

    assert row_ids(history_html(client)) == [str(routed.pk)]
    assert client.get(f"/queue/requests/{routed.pk}/").status_code == 200


def test_unknown_request_id_is_404(client, alice):
    client.force_login(alice)

    assert client.get(f"/queue/requests/{uuid.uuid4()}/").status_code == 404


def test_nav_links_reviewers_to_history(client, alice):
    client.force_login(alice)

    assert '<a href="/queue/history/">History</a>' in history_html(client)


# --- what the history lists ---------------------------------------------------------------------


def test_history_lists_every_finished_state_newest_first_and_no_pending(client, alice):
    now = timezone.now()
    states = ["approved", "rejected", "expired", "cancelled", "executed", "lapsed"]
    made = [finished(status=s, at=now - timedelta(minutes=i)) for i, s in enumerate(states)]
    PendingRequestFactory(summary="still pending")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(r.pk) for r in made]


def test_policy_settled_requests_only_behind_the_filter(client, alice):
    reviewed = finished(status="approved")
    allowed = finished(status="allowed")
    blocked = finished(status="blocked")
    client.force_login(alice)

    assert row_ids(history_html(client)) == [str(reviewed.pk)]
    assert set(row_ids(history_html(client, policy="1"))) == {str(reviewed.pk), str(allowed.pk), str(blocked.pk)}
    assert row_ids(history_html(client, status="blocked")) == [str(blocked.pk)]


def test_row_shows_decider_time_taken_edit_and_reason(client, alice):
    finished(
        status="rejected",
        reason="Wrong customer: this is Jane's ticket",
        reason_category="wrong_recipient",
        at=datetime(2026, 3, 4, 10, 20, tzinfo=UTC),
    )
    finished(status="approved", edited=True, summary="edited one")
    client.force_login(alice)

    html = history_html(client)

    assert "rejected by <strong>alice</strong>" in html
    assert "2026-03-04 10:20 UTC" in html
    assert "took 1 min 30 s" in html
    assert '<span class="tag">Wrong recipient</span> Wrong customer: this is Jane&#x27;s ticket' in html
    assert '<span class="badge edited">edited</span>' in html


def test_executed_and_lapsed_rows_show_what_became_of_the_approval(client, api, alice, default_policies):
    executed_id = submit(api, summary="ran it")["id"]
    action_request_decide(request_id=executed_id, reviewer=alice, approve=True)
    assert report(api, executed_id, "failed").status_code == 200
    lapsed_id = submit(api, summary="never ran")["id"]
    action_request_decide(request_id=lapsed_id, reviewer=alice, approve=True)
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        action_requests_expire_due()
    client.force_login(alice)

    html = history_html(client)

    assert ActionRequest.objects.get(pk=lapsed_id).status == Status.LAPSED
    executed_row = html[html.index(f'data-id="{executed_id}"') :]
    assert "executed: failed" in executed_row.split("</li>")[0]
    lapsed_row = html[html.index(f'data-id="{lapsed_id}"') :]
    assert "lapsed: approval expired unused" in lapsed_row.split("</li>")[0]


def test_an_approval_past_its_deadline_shows_lapsed_before_the_sweep_runs(client, alice):
    request = finished(status="approved", at=timezone.now() - timedelta(hours=1))
    client.force_login(alice)

    assert row_ids(history_html(client, status="lapsed")) == [str(request.pk)]
    assert row_ids(history_html(client, status="approved")) == []
    assert "status-lapsed" in history_html(client)


def test_quorum_votes_are_listed_with_the_decision(client, api, admin_user, alice, bob):
    policy_create(
        actor=admin_user,
        data={"action_pattern": "send_external_email", "mode": "approve", "required_approvals": 2},
        change_note="two approvals",
    )
    request_id = submit(api)["id"]
    action_request_decide(request_id=request_id, reviewer=alice, approve=True, note="looks right")
    action_request_decide(
        request_id=request_id, reviewer=bob, approve=False, reason="too early", reason_category="not_needed"
    )
    client.force_login(alice)

    html = history_html(client)

    assert "alice: approve" in html
    assert 'bob: reject <span class="tag">Not needed</span> too early' in html


# --- filters and search -------------------------------------------------------------------------


@pytest.fixture
def varied(alice, bob):
    billing = AgentFactory(name="billing-bot")
    support = AgentFactory(name="support-bot")
    now = timezone.now()
    return {
        "refund": finished(
            agent=billing, action_type="issue_refund", reviewer="bob", reviewer_user=bob, at=now - timedelta(days=3)
        ),
        "email": finished(
            agent=support,
            status="rejected",
            reviewer="alice",
            reviewer_user=alice,
            reason="wrong_data: amount is off by 10x",
            reason_category="wrong_data",
            summary="Tell Jane her refund is on its way",
            at=now - timedelta(days=1),
        ),
        "expired": finished(agent=support, status="expired", action_type="delete_account", at=now),
    }


def ids(*requests) -> list[str]:
    return [str(r.pk) for r in requests]


def test_filter_by_status(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, status="expired")) == ids(varied["expired"])


def test_filter_by_action_type(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, action_type="issue_refund")) == ids(varied["refund"])


def test_filter_by_agent(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, agent="support-bot")) == ids(varied["expired"], varied["email"])


def test_filter_by_reviewer(client, alice, varied):
    client.force_login(alice)

    assert row_ids(history_html(client, reviewer="bob")) == ids(varied["refund"])


def test_filter_mine(client, alice, bob, varied):
    client.force_login(bob)

    assert row_ids(history_html(client, mine="1")) == ids(varied["refund"])


def test_filter_by_date_range(client, alice, varied):
    day = (timezone.now() - timedelta(days=1)).date().isoformat()
    client.force_login(alice)

    assert row_ids(history_html(client, since=day, until=day)) == ids(varied["email"])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("JANE", ["email"]),  # summary, case-insensitive
        ("delete_acc", ["expired"]),  # action type
        ("billing", ["refund"]),  # agent name
        ("bob", ["refund"]),  # reviewer
        ("off by 10x", ["email"]),  # reason
        ("wrong_data", ["email"]),  # reason category
    ],
)
def test_search(client, alice, varied, q, expected):
    client.force_login(alice)

    assert row_ids(history_html(client, q=q)) == [str(varied[k].pk) for k in expected]


def test_search_by_request_id_full_or_short(client, alice, varied):
    client.force_login(alice)
    target = str(varied["refund"].pk)

    assert row_ids(history_html(client, q=target)) == [target]
    assert row_ids(history_html(client, q=target[:8])) == [target]


def test_search_finds_a_quorum_voter(client, alice, bob, varied):
    request = finished(status="rejected", reviewer="alice")
    Vote.objects.create(
        request=request, reviewer=bob, reviewer_username="bob-the-voter", approve=True, created_at=timezone.now()
    )
    client.force_login(alice)

    assert row_ids(history_html(client, q="the-voter")) == ids(request)


def test_malformed_date_or_status_or_cursor_is_a_400_with_a_message(client, alice):
    client.force_login(alice)

    for params in ({"since": "yesterday"}, {"status": "pending"}, {"cursor": "not-a-cursor"}):
        response = client.get("/queue/history/", params)
        assert response.status_code == 400
        assert 'class="flash error"' in response.content.decode()
