"""The kill switch as a reviewer sees it: pausing an agent empties its cards and raises a banner (issue 13).

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from approvals.services import agent_pause, agent_resume
from tests.e2e.conftest import card, log_in, submit

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

HOSTILE_REASON = "<img src=x onerror=\"document.body.dataset.pwned='1'\"> looping on refunds"


def test_pausing_an_agent_removes_its_cards_and_shows_a_banner_until_it_is_resumed(page, live_url, agent_key, alice):
    log_in(page, "alice")
    first, second = submit(live_url, agent_key), submit(live_url, agent_key)
    expect(card(page, second["id"])).to_have_count(1)
    expect(page.locator("#queue-count")).to_have_text("2")
    banners = page.locator("#pause-banners")
    expect(banners).to_be_hidden()

    agent_pause(agent_name="support-bot", reason=HOSTILE_REASON, by_label="ops")

    banner = banners.locator("p.banner.paused")
    expect(banner).to_have_count(1)
    expect(banner).to_have_text(f"agent support-bot paused by ops: {HOSTILE_REASON}")
    for request in (first, second):
        expect(card(page, request["id"])).to_have_count(0)
    expect(page.locator("#queue-count")).to_have_text("0")
    assert page.evaluate("document.body.dataset.pwned") is None  # the reason is text, not markup

    page.reload()
    page.wait_for_selector("body[data-live=on]")
    expect(banners.locator("p.banner.paused")).to_have_count(1)  # drawn from the server's list too

    agent_resume(agent_name="support-bot", by_label="ops")
    expect(banners.locator("p.banner.paused")).to_have_count(0)
    expect(banners).to_be_hidden()
