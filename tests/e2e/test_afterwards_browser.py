"""Review afterwards in headless Chromium, from the keyboard (issue 15); a screenshot is saved.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from approvals.models import AfterReviewLabel
from approvals.services import Submission, action_request_submit, agent_create
from policies.selectors import policy_table_cache_clear
from policies.services import policies_load_defaults
from tests.e2e.conftest import log_in
from tests.factories import PolicyFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_a_reviewer_labels_unattended_requests_with_the_keyboard(page, alice, artifacts_dir):
    policies_load_defaults()
    PolicyFactory(action_pattern="update_crm", mode="log", priority=50)
    policy_table_cache_clear()
    agent, _ = agent_create(name="crm-bot")
    requests = [
        action_request_submit(
            agent=agent,
            submission=Submission(
                action_type="update_crm",
                params={"customer": f"c-{n}", "field": "email", "value": f"new{n}@example.org"},
                summary=f"Update the email of customer c-{n} <img src=x onerror=alert(1)>",
                evidence=[{"title": "Ticket", "url": "https://tickets.example/1"}],
            ),
        ).request
        for n in range(3)
    ]
    log_in(page, "alice")
    page.goto("/queue/afterwards/")
    cards = page.locator("article.after-review")
    expect(cards).to_have_count(3)
    page.screenshot(path=str(artifacts_dir / "review-afterwards.png"), full_page=True)

    page.keyboard.press("f")  # the first card: fine, saved at once
    expect(page.get_by_role("status")).to_have_text("Label saved.")
    expect(cards).to_have_count(2)

    page.keyboard.press("j")  # the next card
    page.keyboard.press("h")  # should have asked a human: the reason is asked for
    page.keyboard.press("Tab")  # (focus is on the reason; choose one)
    focused_card = page.locator(f"article[data-id='{requests[2].pk}']")
    focused_card.locator("select[name=reason_category]").select_option(index=1)
    focused_card.get_by_role("button", name="Save label").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Label saved.")
    expect(cards).to_have_count(1)

    labels = dict(AfterReviewLabel.objects.values_list("request_id", "label"))
    assert labels == {requests[0].pk: "fine", requests[2].pk: "should_have_asked"}
