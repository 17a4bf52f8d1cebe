"""Reviewer quality (issue 15): openings, fast approvals, blind second opinions and Cohen's kappa; staff only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals.models import ActionRequest
from approvals.services import action_request_decide
from reviewers.models import CardOpening, SecondOpinion
from reviewers.quality import cohens_kappa, reviewer_agreement, reviewer_figures, second_opinion_sampled
from reviewers.services import claim_open, reviewer_create
from tests.helpers import reject, submit_as

pytestmark = pytest.mark.usefixtures("default_policies")

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def email(n: int) -> dict:
    return {"to": f"customer-{n}@example.org", "subject": "Your refund"}


# --- Cohen's kappa and the sample -------------------------------------------------------------------


def test_kappa_of_the_textbook_example_is_0_4():
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15 (po 0.7, pe 0.5).
    pairs = [(True, True)] * 20 + [(True, False)] * 5 + [(False, True)] * 10 + [(False, False)] * 15
    assert cohens_kappa(pairs) == pytest.approx(0.4)


def test_kappa_is_1_for_full_agreement_below_0_for_systematic_disagreement_and_undefined_without_variation():
    assert cohens_kappa([(True, True), (False, False), (True, True)]) == pytest.approx(1.0)
    assert cohens_kappa([(True, False), (False, True)]) == pytest.approx(-1.0)
    assert cohens_kappa([(True, True)] * 5) is None
    assert cohens_kappa([]) is None


def test_the_second_opinion_sample_is_fixed_by_the_request_id_and_close_to_its_rate():
    ids = [uuid.UUID(int=n * 7919 + 12345) for n in range(10_000)]
    sampled = [second_opinion_sampled(request_id, 0.05) for request_id in ids]
    assert sampled == [second_opinion_sampled(request_id, 0.05) for request_id in ids]
    # 500 expected; 3 standard deviations (sqrt(10000 * 0.05 * 0.95) = 21.8) either side.
    assert 435 <= sum(sampled) <= 565
    assert not any(second_opinion_sampled(request_id, 0.0) for request_id in ids)
    assert all(second_opinion_sampled(request_id, 1.0) for request_id in ids)


# --- openings and the figures ----------------------------------------------------------------------


def test_a_card_opening_is_the_first_claim_and_renewals_keep_it(agent, alice):
    request = submit_as(agent)
    with time_machine.travel(T0, tick=False):
        claim_open(request_id=request.pk, user=alice)
    with time_machine.travel(T0 + timedelta(seconds=40), tick=False):
        claim_open(request_id=request.pk, user=alice)
    assert list(CardOpening.objects.values_list("user__username", "opened_at")) == [("alice", T0)]


def test_figures_count_fast_approvals_from_the_opening_and_compare_with_the_groups_rate(agent, alice, bob):
    quick, slow, unopened, rejected = (submit_as(agent, params=email(n)) for n in range(4))
    with time_machine.travel(T0, tick=False):
        for request, reviewer in ((quick, alice), (slow, bob), (rejected, bob)):
            claim_open(request_id=request.pk, user=reviewer)
    with time_machine.travel(T0 + timedelta(seconds=2), tick=False):
        action_request_decide(request_id=quick.pk, reviewer=alice, approve=True)
        action_request_decide(request_id=unopened.pk, reviewer=alice, approve=True)
    with time_machine.travel(T0 + timedelta(seconds=60), tick=False):
        action_request_decide(request_id=slow.pk, reviewer=bob, approve=True)
        reject(rejected.pk, bob)

    figures = {f.username: f for f in reviewer_figures(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))}
    assert figures["alice"].decisions == 2
    assert figures["alice"].fast_approvals == 1  # the unopened card has no opening to measure from
    assert figures["alice"].median_seconds_from_opening == pytest.approx(2.0)
    assert figures["alice"].approval_rate == 1.0
    assert figures["bob"].decisions == 2
    assert figures["bob"].fast_approvals == 0
    assert figures["bob"].approval_rate == 0.5
    assert figures["bob"].median_seconds_from_opening == pytest.approx(60.0)
    # Everyone decided in the same (default) group: 3 approvals out of 4.
    assert figures["alice"].group_approval_rate == pytest.approx(0.75)
    assert figures["bob"].group_approval_rate == pytest.approx(0.75)


# --- blind second opinions -------------------------------------------------------------------------


@pytest.fixture
def everything_sampled(settings):
    settings.COUNTERSIGN_SECOND_OPINION_RATE = 1.0


@pytest.fixture
def decided_by_alice(agent, alice):
    request = submit_as(agent)
    action_request_decide(
        request_id=request.pk, reviewer=alice, approve=False, reason="SECRET-REASON", reason_category="wrong_recipient"
    )
    return request


def test_the_second_opinion_page_shows_another_reviewers_decided_request_without_its_decision(
    client, bob, decided_by_alice, everything_sampled
):
    client.force_login(bob)
    html = client.get("/queue/second-opinion/").content.decode()
    assert f'data-id="{decided_by_alice.pk}"' in html
    assert "SECRET-REASON" not in html
    assert "alice" not in html
    assert "wrong_recipient" not in html
    assert "rejected" not in html


def test_a_reviewer_is_never_asked_to_re_judge_their_own_decision(client, alice, decided_by_alice, everything_sampled):
    client.force_login(alice)
    html = client.get("/queue/second-opinion/").content.decode()
    assert "Nothing to re-judge right now." in html


def test_an_opinion_is_recorded_once_and_changes_nothing_about_the_request(
    client, bob, decided_by_alice, everything_sampled
):
    client.force_login(bob)
    first = client.post("/queue/second-opinion/", {"request_id": str(decided_by_alice.pk), "decision": "approve"})
    assert first.status_code == 302
    again = client.post("/queue/second-opinion/", {"request_id": str(decided_by_alice.pk), "decision": "reject"})
    assert again.status_code == 409
    assert list(SecondOpinion.objects.values_list("reviewer__username", "approve")) == [("bob", True)]
    decided_by_alice.refresh_from_db()
    assert decided_by_alice.status == "rejected"
    assert "Nothing to re-judge right now." in client.get("/queue/second-opinion/").content.decode()


def test_an_opinion_on_a_request_outside_the_sample_or_by_its_own_reviewer_is_refused(
    client, alice, bob, decided_by_alice, settings
):
    settings.COUNTERSIGN_SECOND_OPINION_RATE = 0.0
    client.force_login(bob)
    outside = client.post("/queue/second-opinion/", {"request_id": str(decided_by_alice.pk), "decision": "approve"})
    assert outside.status_code == 422
    settings.COUNTERSIGN_SECOND_OPINION_RATE = 1.0
    client.force_login(alice)
    own = client.post("/queue/second-opinion/", {"request_id": str(decided_by_alice.pk), "decision": "approve"})
    assert own.status_code == 403
    assert not SecondOpinion.objects.exists()


def test_someone_who_is_not_a_reviewer_cannot_give_or_see_second_opinions(
    client, charlie, decided_by_alice, everything_sampled
):
    client.force_login(charlie)
    assert client.get("/queue/second-opinion/").status_code == 403
    posted = client.post("/queue/second-opinion/", {"request_id": str(decided_by_alice.pk), "decision": "approve"})
    assert posted.status_code == 403


# --- agreement and the staff page ------------------------------------------------------------------


def seed_agreement(agent, alice, bob):
    """send_external_email: 10 pairs, agreement 0.7 and kappa 0.4 (the textbook proportions, scaled down)."""
    first_second = [(True, True)] * 4 + [(True, False)] * 1 + [(False, True)] * 2 + [(False, False)] * 3
    for n, (first, second) in enumerate(first_second):
        request = submit_as(agent, params=email(n))
        if first:
            action_request_decide(request_id=request.pk, reviewer=alice, approve=True)
        else:
            reject(request.pk, alice)
        SecondOpinion.objects.create(request=request, reviewer=bob, approve=second, created_at=timezone.now())
    return first_second


def test_agreement_per_action_type_is_the_kappa_of_decision_and_second_opinion(agent, alice, bob):
    pairs = seed_agreement(agent, alice, bob)
    now = timezone.now()
    [agreement] = reviewer_agreement(since=now - timedelta(days=1), until=now + timedelta(minutes=1))
    assert (agreement.action_type, agreement.pairs, agreement.agreed) == ("send_external_email", 10, 7)
    assert agreement.kappa == pytest.approx(cohens_kappa(pairs))
    assert agreement.kappa == pytest.approx(0.4)


def test_the_quality_page_is_for_staff_only(client, agent, alice, bob, admin_user):
    seed_agreement(agent, alice, bob)
    client.force_login(admin_user)
    page = client.get("/queue/quality/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-reviewer="alice"' in html
    assert '<td class="kappa">0.40</td>' in html
    for reviewer in (alice, bob):
        client.force_login(reviewer)
        assert client.get("/queue/quality/").status_code == 403
    client.logout()
    assert client.get("/queue/quality/").status_code == 302


def test_a_reviewer_in_another_group_is_not_offered_requests_it_cannot_see(client, agent, alice, everything_sampled):
    finance_only = reviewer_create(username="fiona", password="pw-long-enough-1", group_name="finance")
    request = submit_as(agent)
    # Routed to alice's group (as a policy's reviewer group would): finance cannot see it.
    ActionRequest.objects.filter(pk=request.pk).update(reviewer_group=Group.objects.get(name="reviewers"))
    action_request_decide(request_id=request.pk, reviewer=alice, approve=True)
    client.force_login(finance_only)
    assert "Nothing to re-judge right now." in client.get("/queue/second-opinion/").content.decode()
    refused = client.post("/queue/second-opinion/", {"request_id": str(request.pk), "decision": "approve"})
    assert refused.status_code == 404
