"""The history and a request's page in headless Chromium, on requests that went through the real services.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio tests/e2e/test_history_browser.py
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from approvals.services import action_request_decide, action_requests_expire_due, agent_create
from policies.services import policies_load_defaults, policy_create
from reviewers.services import reviewer_create
from tests.conftest import PASSWORD, submission_body
from tests.e2e.conftest import run_in_thread
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


# Elements whose content is wider than they are, or that stick out of the viewport.
OVERFLOWING = """
Array.from(document.querySelectorAll("body *"))
  .filter((n) => n.scrollWidth > n.clientWidth + 1 || n.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((n) => getComputedStyle(n).overflowX === "visible")
  .map((n) => `${n.tagName}.${n.className} ${n.scrollWidth}/${n.clientWidth}`)
"""


class Agent:
    """An agent speaking to the live server over HTTP."""

    def __init__(self, live_url: str, key: str) -> None:
        self.http = httpx.Client(base_url=live_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def submit(self, **overrides: Any) -> str:
        response = self.http.post("/api/v1/actions/", json=submission_body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def report(self, request_id: str, outcome: str = "succeeded") -> None:
        action = self.http.get(f"/api/v1/actions/{request_id}/").json()
        response = self.http.post(
            f"/api/v1/actions/{request_id}/execution",
            json={
                "status": outcome,
                "approval_token": action["approval_token"],
                "params_hash": action["final_params_hash"],
                "result": {"message_id": "msg-77"},
            },
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def seeded(live_url: str) -> dict[str, str]:
    """An edited approval, a categorised rejection, an executed approval and a lapsed one."""
    policies_load_defaults()
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    policy_create(
        actor=admin,
        data={"action_pattern": "post_to_social", "mode": "approve", "approval_ttl_seconds": 1},
        change_note="approvals for social posts lapse fast (browser test)",
    )
    alice = reviewer_create(username="alice", password=PASSWORD)
    _agent, key = agent_create(name="support-bot")
    agent = Agent(live_url, key)

    def decide(request_id: str, **kwargs: Any) -> None:
        # Deciding publishes live events after commit: off the Playwright thread (see run_in_thread).
        run_in_thread(action_request_decide, request_id=request_id, reviewer=alice, **kwargs)

    lapsed = agent.submit(
        action_type="post_to_social", summary="Post the outage notice", params={"text": "We are down"}
    )
    decide(lapsed, approve=True)
    edited = agent.submit(
        summary=f"Tell Jane her refund is on its way {XSS}",
        params={"to": "jane@customer.example", "subject": "Refund", "cc": "team@example.org"},
        evidence=[
            {"title": "Ticket 4411", "url": "https://support.example/4411", "excerpt": "Where is my refund?"},
            {"title": f"Crafted {XSS}", "url": "javascript:window.__pwned=1", "excerpt": XSS},
        ],
    )
    decide(
        edited,
        approve=True,
        final_params={"to": "jane@customer.example", "subject": "Your refund of $42", "bcc": "audit@example.org"},
    )
    rejected = agent.submit(summary="Email the CFO the payroll file", params={"to": "cfo@rival.example"})
    decide(rejected, approve=False, reason="That is not our CFO", reason_category="wrong_recipient")
    executed = agent.submit(summary="Confirm the delivery date to Sam", params={"to": "sam@customer.example"})
    decide(executed, approve=True)
    agent.report(executed)
    time.sleep(1.2)  # the post_to_social approval (1 s) runs out unused
    run_in_thread(action_requests_expire_due)
    return {"lapsed": lapsed, "edited": edited, "rejected": rejected, "executed": executed}


def sign_in(page: Any, username: str, next_url: str) -> None:
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def row(page: Any, request_id: str) -> Any:
    return page.locator(f"li.history-row[data-id='{request_id}']")


def test_history_and_request_pages_show_decisions_diffs_and_audit_trail(
    seeded: dict[str, str], page: Any, artifacts_dir: Any
) -> None:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    sign_in(page, "alice", "/queue/history/")

    expect(page.locator("li.history-row")).to_have_count(4)
    rows = page.locator("li.history-row")
    assert [rows.nth(i).get_attribute("data-id") for i in range(4)] == [
        seeded["executed"],
        seeded["rejected"],
        seeded["edited"],
        seeded["lapsed"],
    ]
    expect(row(page, seeded["rejected"])).to_contain_text("rejected by alice")
    expect(row(page, seeded["rejected"]).locator(".tag")).to_have_text("Wrong recipient")
    expect(row(page, seeded["rejected"])).to_contain_text("That is not our CFO")
    expect(row(page, seeded["edited"]).locator(".badge.edited")).to_be_visible()
    expect(row(page, seeded["edited"]).locator(".summary")).to_have_text(f"Tell Jane her refund is on its way {XSS}")
    expect(row(page, seeded["executed"])).to_contain_text("executed: succeeded")
    expect(row(page, seeded["lapsed"])).to_contain_text("lapsed: approval expired unused")
    expect(row(page, seeded["lapsed"]).locator(".badge.status")).to_have_text("lapsed")
    expect(page.locator("nav a", has_text="History")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "history.png"), full_page=True)

    page.fill("input[name=q]", "cfo")
    page.click(".history-filters button[type=submit]")
    expect(page.locator("li.history-row")).to_have_count(1)
    expect(row(page, seeded["rejected"])).to_be_visible()
    page.goto("/queue/history/?status=lapsed")
    expect(page.locator("li.history-row")).to_have_count(1)

    page.goto("/queue/history/")
    row(page, seeded["edited"]).locator("a.action").click()
    page.wait_for_url(f"**/queue/requests/{seeded['edited']}/")
    diff = page.locator("table.diff")
    expect(diff.locator("tr.change-changed")).to_contain_text("subject")
    expect(diff.locator("tr.change-changed .before")).to_have_text("Refund")
    expect(diff.locator("tr.change-changed .after")).to_have_text("Your refund of $42")
    expect(diff.locator("tr.change-removed")).to_contain_text("cc")
    expect(diff.locator("tr.change-added")).to_contain_text("audit@example.org")
    expect(page.locator("a[href='https://support.example/4411']")).to_have_text("Ticket 4411")
    expect(page.locator(".unsafe-url")).to_have_text("javascript:window.__pwned=1")
    assert page.locator("a[href^='javascript']").count() == 0
    expect(page.locator("ol.audit strong.kind")).to_have_text(["submitted", "edited_and_approved"])
    page.screenshot(path=str(artifacts_dir / "request-detail.png"), full_page=True)

    page.goto(f"/queue/requests/{seeded['executed']}/")
    expect(page.locator(".exec-succeeded")).to_contain_text("The agent reported succeeded")
    expect(page.locator("ol.audit strong.kind")).to_have_text(["submitted", "approved", "executed"])
    page.goto(f"/queue/requests/{seeded['lapsed']}/")
    expect(page.locator(".exec-lapsed")).to_contain_text("Lapsed: the approval expired unused")

    # On a phone, in dark mode: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    for url in ("/queue/history/", f"/queue/requests/{seeded['edited']}/"):
        page.goto(url)
        overflowing = page.evaluate(OVERFLOWING)
        assert overflowing == [], f"wider than a phone on {url}: {overflowing}"
    page.screenshot(path=str(artifacts_dir / "request-detail-phone-dark.png"), full_page=True)

    assert page.evaluate("window.__pwned") is None
    assert not [m for m in console if "Content Security Policy" in m]
