"""The reviewer queue in headless Chromium, against the real ASGI app, Redis and database.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.models import ActionRequest
from approvals.services import action_request_decide, action_requests_expire_due, agent_create
from policies.models import Policy
from policies.services import policies_load_defaults, policy_version_record
from tests.e2e.conftest import card, log_in, run_in_thread, submit

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

XSS_SCRIPT = "<script>window.__pwned=1</script>"
XSS_IMG = '<img src=x onerror="window.__pwned=1">'
XSS = f"{XSS_SCRIPT} {XSS_IMG}"


def mark_page(page: Any) -> None:
    """Leave a mark in the page's JavaScript state: a reload would wipe it."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__notReloaded") is True


def test_a_submitted_action_appears_live_and_an_edited_approval_reaches_the_waiting_agent(
    page, live_url, agent_key, alice, artifacts_dir
):
    log_in(page, "alice")
    mark_page(page)

    submitted = submit(live_url, agent_key)
    assert submitted["status"] == "pending"
    waited: dict[str, Any] = {}

    def wait_for_outcome() -> None:
        waited["response"] = httpx.get(
            f"{live_url}/api/v1/actions/{submitted['id']}/wait",
            params={"timeout": 30},
            headers={"Authorization": f"Bearer {agent_key}"},
            timeout=40,
        )

    waiter = threading.Thread(target=wait_for_outcome)
    waiter.start()

    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()
    expect(request_card.locator(".summary")).to_have_text("Tell the customer their refund is on its way")
    assert_not_reloaded(page)
    page.screenshot(path=str(artifacts_dir / "queue.png"), full_page=True)

    edited = {"to": "customer@example.org", "subject": "Your refund", "body": "It arrives on Friday."}
    request_card.get_by_role("button", name="Edit").click()
    request_card.locator("textarea.params-editor").fill(json.dumps(edited))
    request_card.get_by_role("button", name="Review changes").click()
    expect(request_card.locator("table.diff")).to_contain_text("It arrives on Friday.")
    request_card.get_by_role("button", name="Approve with these edits").click()

    expect(request_card).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text("Approved with edits")
    waiter.join(35)
    assert not waiter.is_alive(), "the wait call did not return"
    outcome = waited["response"]
    assert outcome.status_code == 200
    assert outcome.json()["status"] == "approved"
    assert outcome.json()["final_params"] == edited


def test_the_parameter_editor_stays_closed_until_the_reviewer_clicks_edit(page, live_url, agent_key, alice):
    # An editor shown while closed would take edits that a plain "Approve" then ignores.
    log_in(page, "alice")
    submitted = submit(live_url, agent_key)
    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()
    expect(request_card.locator("textarea.params-editor")).to_be_hidden()

    request_card.get_by_role("button", name="Edit").click()

    expect(request_card.locator("textarea.params-editor")).to_be_visible()
    # While editing, a plain "Approve" is out of reach: edits are approved only through the diff.
    expect(request_card.get_by_role("button", name="Approve", exact=True)).to_be_hidden()


@pytest.mark.parametrize("arrival", ["before the page loads", "while the page is open"])
def test_agent_supplied_html_renders_as_text_and_runs_nothing(page, live_url, alice, arrival):
    policies_load_defaults()
    _agent, key = agent_create(name=f"bot {XSS}")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = {
        "summary": f"Refund {XSS}",
        "params": {f"key {XSS}": f"value {XSS}"},
        "evidence": [{"title": f"title {XSS}", "url": "javascript:alert(1)", "excerpt": f"excerpt {XSS}"}],
    }

    if arrival == "before the page loads":
        submitted = submit(live_url, key, **hostile)
        log_in(page, "alice")
    else:
        log_in(page, "alice")
        submitted = submit(live_url, key, **hostile)

    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()
    expect(request_card.locator(".summary")).to_have_text(f"Refund {XSS}")
    expect(request_card.locator(".agent")).to_have_text(f"bot {XSS}")
    expect(request_card.locator(".params dt")).to_have_text(f"key {XSS}")
    expect(request_card.locator(".params dd")).to_have_text(f"value {XSS}")
    expect(request_card.locator(".evidence-title")).to_have_text(f"title {XSS}")
    expect(request_card.locator(".evidence blockquote")).to_have_text(f"excerpt {XSS}")
    expect(request_card.locator(".evidence")).to_contain_text("javascript:alert(1)")
    expect(request_card.locator(".evidence a")).to_have_count(0)  # the only link is our own record page
    expect(page.locator("img")).to_have_count(0)
    expect(page.locator("#queue script")).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []


def test_the_queue_page_has_a_strict_csp_and_no_inline_script(page, live_url, alice):
    log_in(page, "alice")
    response = page.goto("/queue/")

    csp = response.headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp
    inline_scripts = page.evaluate(
        """Array.from(document.scripts)
            .filter((s) => !s.src && s.type !== "application/json")
            .map((s) => s.outerHTML)"""
    )
    assert inline_scripts == []


def test_a_request_decided_by_another_reviewer_leaves_the_open_queue(page, live_url, agent_key, alice, bob):
    log_in(page, "alice")
    mark_page(page)
    submitted = submit(live_url, agent_key)
    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()

    run_in_thread(action_request_decide, request_id=submitted["id"], reviewer=bob, approve=True)

    expect(request_card).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text("approved (bob)")
    assert_not_reloaded(page)


def drop_removal_events(ws: Any) -> None:
    """Forward the queue's websocket both ways, except the server's 'removed' events (a slow network)."""
    server = ws.connect_to_server()
    server.on_message(lambda message: None if json.loads(message)["type"] == "removed" else ws.send(message))


def test_approving_a_card_someone_else_already_decided_says_who_decided_it(new_page, live_url, agent_key, alice, bob):
    alice_page, bob_page = new_page(), new_page()
    # Bob's queue never hears that the request left, so his card is still there to click.
    bob_page.route_web_socket("**/ws/queue/", drop_removal_events)
    log_in(alice_page, "alice")
    log_in(bob_page, "bob")
    submitted = submit(live_url, agent_key)
    alice_card, bob_card = card(alice_page, submitted["id"]), card(bob_page, submitted["id"])
    expect(alice_card).to_be_visible()
    expect(bob_card).to_be_visible()

    alice_card.get_by_role("button", name="Approve").click()
    expect(alice_card).to_have_count(0)
    bob_card.get_by_role("button", name="Approve").click()

    expect(bob_card.locator(".card-status")).to_contain_text("Already decided by alice")
    assert ActionRequest.objects.get(pk=submitted["id"]).decision.reviewer_username == "alice"


def test_an_idle_queue_keeps_one_websocket_open(page, alice):
    sockets: list[Any] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    log_in(page, "alice")

    page.wait_for_timeout(8_000)

    assert len(sockets) == 1
    assert not sockets[0].is_closed()


def test_a_request_that_expires_while_the_page_is_open_leaves_the_queue(page, live_url, agent_key, alice):
    Policy.objects.create(action_pattern="send_external_email", mode="approve", priority=100, pending_ttl_seconds=2)
    policy_version_record(actor=None, note="a two-second deadline for this test")
    log_in(page, "alice")
    mark_page(page)
    submitted = submit(live_url, agent_key)
    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()

    deadline = ActionRequest.objects.get(pk=submitted["id"]).expires_at
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.2)
    expect(request_card).to_be_visible()  # the page alone never drops a card: the sweep does
    assert run_in_thread(action_requests_expire_due) == 1

    expect(request_card).to_have_count(0)
    expect(page.locator("#flash")).to_contain_text("expired")
    assert_not_reloaded(page)
