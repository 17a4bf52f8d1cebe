"""Reviewer quality and a blind second opinion in headless Chromium (issue 15); screenshots saved as artifacts.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.services import action_request_decide, agent_create
from policies.services import policies_load_defaults
from reviewers.models import SecondOpinion
from reviewers.services import claim_open, reviewer_create
from tests.e2e.conftest import PASSWORD
from tests.helpers import reject, submit_as

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def seeded(transactional_db: None, settings: Any) -> dict[str, Any]:
    settings.COUNTERSIGN_SECOND_OPINION_RATE = 1.0
    policies_load_defaults()
    agent, _ = agent_create(name="support-bot")
    alice = reviewer_create(username="alice", password=PASSWORD)
    bob = reviewer_create(username="bob", password=PASSWORD)
    staff = reviewer_create(username="olga", password=PASSWORD)
    staff.is_staff = True
    staff.save()
    pairs = [(True, True)] * 4 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 3
    for n, (first, second) in enumerate(pairs):
        request = submit_as(agent, params={"to": f"c{n}@example.org", "subject": "Refund"})
        claim_open(request_id=request.pk, user=alice)
        if first:
            action_request_decide(request_id=request.pk, reviewer=alice, approve=True)
        else:
            reject(request.pk, alice)
        SecondOpinion.objects.create(request=request, reviewer=bob, approve=second, created_at=timezone.now())
    unjudged = submit_as(agent, params={"to": "new@example.org", "subject": "<b>Refund</b>"})
    action_request_decide(request_id=unjudged.pk, reviewer=alice, approve=True)
    return {"unjudged": unjudged}


def sign_in(page: Any, username: str, to: str) -> None:
    page.goto(f"/accounts/login/?next={to}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{to}")


def test_staff_read_reviewer_quality_with_kappa_per_action_type(seeded, page, artifacts_dir):
    sign_in(page, "olga", "/queue/quality/")
    expect(page.locator("tr[data-reviewer='alice'] td").nth(1)).to_have_text("11")
    expect(page.locator("tr[data-action-type='send_external_email'] td.kappa")).to_have_text("0.40")
    expect(page.locator("tr[data-reviewer='alice'] td.fast")).to_have_text(
        "5 of 6"
    )  # claimed and approved at once; the last was never opened
    page.screenshot(path=str(artifacts_dir / "reviewer-quality.png"), full_page=True)


def test_a_reviewer_gives_a_blind_second_opinion_from_the_keyboard(seeded, page, artifacts_dir):
    sign_in(page, "bob", "/queue/second-opinion/")
    card = page.locator(f"article[data-id='{seeded['unjudged'].pk}']")
    expect(card).to_be_visible()
    expect(card.locator("pre.params")).to_contain_text("<b>Refund</b>")  # agent text shown as text
    page.screenshot(path=str(artifacts_dir / "second-opinion.png"), full_page=True)
    card.get_by_role("button", name="I would reject").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Recorded. Thank you.")
    assert SecondOpinion.objects.filter(request=seeded["unjudged"], approve=False).count() == 1
