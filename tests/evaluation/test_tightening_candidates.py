"""Tightening candidates (issue 15): what reviewers flagged afterwards gets a "simulate stricter" button."""

from __future__ import annotations

import html
import re

import pytest
import yaml

from approvals.services import Submission, action_request_label, action_request_submit
from policies.selectors import policy_table_cache_clear
from policies.services import policy_table_snapshot
from tests.factories import PolicyFactory

pytestmark = pytest.mark.usefixtures("default_policies")


@pytest.fixture
def flagged(agent, alice):
    PolicyFactory(action_pattern="update_crm", mode="log", priority=40)
    policy_table_cache_clear()
    requests = [
        action_request_submit(
            agent=agent,
            submission=Submission(action_type="update_crm", params={"n": n}, summary="Update", evidence=[]),
        ).request
        for n in range(4)
    ]
    action_request_label(request_id=requests[0].pk, reviewer=alice, label="should_have_asked", reason_category="other")
    action_request_label(request_id=requests[1].pk, reviewer=alice, label="fine")
    return requests


def stricter_form(page: str) -> str | None:
    match = re.search(r'<tr class="tightening-row">.*?(<form .*?</form>)', page, re.S)
    return match.group(1) if match else None


def test_staff_simulate_stricter_for_what_was_flagged_and_nothing_is_applied(client, admin_user, flagged):
    client.force_login(admin_user)
    page = client.get("/dashboard/").content.decode()
    row = re.search(r'<tr class="tightening-row">(.*?)</tr>', page, re.S).group(1)
    assert "<td>1</td>" in row and "<td>2</td>" in row  # 1 flagged of 2 labelled
    form = stricter_form(page)
    table_yaml = html.unescape(re.search(r'<textarea name="table_yaml" hidden>(.*?)</textarea>', form, re.S).group(1))
    proposed = yaml.safe_load(table_yaml)["policies"][-1]
    assert (proposed["action_pattern"], proposed["mode"], proposed["condition"], proposed["priority"]) == (
        "update_crm",
        "approve",
        'agent.name == "support-bot"',
        41,
    )
    before = policy_table_snapshot()
    replay = client.post("/policies/simulate/", {"table_yaml": table_yaml, "days": "30", "action": "simulate"})
    assert "log-&gt;approve: 4" in replay.content.decode()
    assert policy_table_snapshot() == before


def test_reviewers_see_tightening_candidates_without_the_button(client, alice, flagged):
    client.force_login(alice)
    page = client.get("/dashboard/").content.decode()
    assert 'class="tightening-row"' in page
    assert stricter_form(page) is None
