from __future__ import annotations

import html
import re

import pytest
import yaml
from django.test import Client

from evaluation.drift import DriftConfig, drift_detect
from policies.models import PolicyVersion
from policies.services import policy_table_snapshot
from tests.evaluation.synthetic import Case, write_history
from tests.factories import PendingRequestFactory


@pytest.fixture
def seeded(agent):
    write_history(
        agent=agent,
        action_type="send_email",
        cases=[Case()] * 8 + [Case(outcome="rejected", reason="<script>alert(1)</script>: nope")] * 2,
    )
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 3)
    return agent


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_reviewer_sees_metrics_table_with_svg_bars(seeded, alice):
    response = _client(alice).get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "send_email" in html and "lookup_order" in html
    assert '<rect x="0" y="0" width="20" height="10" fill="#b42318">' in html  # 2 of 10 rejected
    assert "<script" not in html.split("<main>")[1], "no inline script: the CSP forbids it"


def test_admin_sees_the_dashboard(seeded, admin_user):
    assert _client(admin_user).get("/dashboard/").status_code == 200


def test_outsider_is_refused(seeded, charlie):
    assert _client(charlie).get("/dashboard/").status_code == 403


def test_anonymous_is_sent_to_login(db):
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_rejection_bar_drills_down_to_the_rejected_decisions(seeded, alice):
    html = _client(alice).get("/dashboard/").content.decode()
    link = re.search(r'href="(/dashboard/decisions/\?action_type=send_email&amp;decision=rejected[^"]*)"', html)
    assert link
    page = _client(alice).get(link.group(1).replace("&amp;", "&")).content.decode()
    assert page.count('class="decision-row"') == 2
    assert "&lt;script&gt;" in page and "<script>alert" not in page, "agent and reviewer text is escaped"


def test_alert_is_shown_and_links_to_its_decisions(agent, alice):
    later = write_history(agent=agent, action_type="send_email", cases=[Case()] * 10)
    drift_detect(config=DriftConfig())
    write_history(
        agent=agent, action_type="send_email", cases=[Case(outcome="rejected", reason="pii: x")] * 5, start=later
    )
    PendingRequestFactory(agent=agent, action_type="wire_transfer")
    drift_detect(config=DriftConfig())
    html = _client(alice).get("/dashboard/").content.decode()
    assert html.count('class="alert-row"') == 2
    link = re.search(r'href="(/dashboard/decisions/\?alert=\d+)">[^<]*rejected 5 times', html)
    assert link
    page = _client(alice).get(link.group(1)).content.decode()
    assert page.count('class="decision-row"') == 5


def test_auto_candidates_are_listed(agent, alice):
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 200)
    html = _client(alice).get("/dashboard/").content.decode()
    assert "200 of 200" in html


def test_decisions_page_pages_with_a_cursor(agent, alice):
    write_history(agent=agent, action_type="send_email", cases=[Case()] * 60)
    client = _client(alice)
    first = client.get("/dashboard/decisions/").content.decode()
    assert first.count('class="decision-row"') == 50
    next_link = re.search(r'href="\?([^"]+)">Next page', first).group(1).replace("&amp;", "&")
    second = client.get(f"/dashboard/decisions/?{next_link}").content.decode()
    assert second.count('class="decision-row"') == 10


def _candidate_form(page: str) -> str | None:
    match = re.search(
        r'<form method="post" action="/policies/simulate/" class="simulate-candidate">(.*?)</form>', page, re.S
    )
    return match.group(1) if match else None


def test_admin_simulates_relaxing_a_candidate_and_nothing_is_applied(agent, admin_user):
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 200)
    table_before, versions_before = policy_table_snapshot(), PolicyVersion.objects.count()
    client = _client(admin_user)
    form = _candidate_form(client.get("/dashboard/").content.decode())
    assert form is not None
    table_yaml = html.unescape(re.search(r"<textarea name=\"table_yaml\" hidden>(.*?)</textarea>", form, re.S).group(1))
    proposed = yaml.safe_load(table_yaml)["policies"][-1]
    assert (proposed["action_pattern"], proposed["mode"], proposed["condition"]) == ("lookup_order", "log", "")
    page = client.post("/policies/simulate/", {"table_yaml": table_yaml, "days": "30", "action": "simulate"})
    assert page.status_code == 200
    assert "approve-&gt;log: 200" in page.content.decode(), "all 200 replayed requests would be relaxed"
    assert policy_table_snapshot() == table_before, "a candidate is never applied by itself"
    assert PolicyVersion.objects.count() == versions_before


def test_reviewers_see_candidates_but_not_the_simulate_button(agent, alice):
    write_history(agent=agent, action_type="lookup_order", cases=[Case()] * 200)
    page = _client(alice).get("/dashboard/").content.decode()
    assert 'class="candidate-row"' in page
    assert _candidate_form(page) is None
