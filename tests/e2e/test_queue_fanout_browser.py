"""A decision costs the other open queues one websocket message, not a refetch (issue 12).

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from reviewers.services import reviewer_create
from tests.e2e.conftest import PASSWORD, card, log_in, submit

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def cards_json_requests(page: Any) -> list[str]:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/queue/cards.json" in request.url else None)
    return asked


def test_a_decision_makes_no_cards_json_request_from_the_other_open_queues(new_page, live_url, agent_key, alice):
    for name in ("bob", "carol"):
        reviewer_create(username=name, password=PASSWORD)
    pages = {name: new_page() for name in ("alice", "bob", "carol")}
    for name, page in pages.items():
        log_in(page, name)
    first, second = submit(live_url, agent_key), submit(live_url, agent_key)
    for page in pages.values():
        expect(card(page, second["id"])).to_have_count(1)
        expect(page.locator("#queue-count")).to_have_text("2")
    page_asks = {name: cards_json_requests(page) for name, page in pages.items() if name != "alice"}

    expect(card(pages["alice"], first["id"])).to_be_visible()  # the soonest deadline opens first
    card(pages["alice"], first["id"]).get_by_role("button", name="Approve").click()

    for name in ("bob", "carol"):
        expect(card(pages[name], first["id"])).to_have_count(0)
        expect(pages[name].locator("#queue-count")).to_have_text("1")
    # Longer than the page's old refetch delay (1.5 s) after a removal.
    pages["bob"].wait_for_timeout(2_500)
    assert page_asks == {"bob": [], "carol": []}
    expect(card(pages["bob"], second["id"])).to_have_count(1)
