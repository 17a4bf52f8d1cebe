"""The 30-second review in headless Chromium: keyboard, typed edits, claims, refusals, reconnection, batches.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.models import ActionRequest, ActionTypeSchema, Decision, Status
from approvals.services import action_request_decide
from policies.models import Policy
from policies.services import policy_version_record
from tests.conftest import submission_body
from tests.e2e.conftest import card, log_in, run_in_thread, submit

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

EMAIL_SCHEMA = {
    "type": "object",
    "required": ["to", "subject", "priority"],
    "properties": {
        "to": {"type": "string", "format": "email", "description": "Who receives the email"},
        "subject": {"type": "string", "minLength": 3, "maxLength": 120},
        "body": {"type": "string"},
        "priority": {"enum": ["low", "normal", "urgent"]},
        # The page does not check multipleOf: the server's validation has the last word.
        "copies": {"type": "integer", "minimum": 1, "maximum": 5, "multipleOf": 2},
    },
}


def row(page: Any, request_id: str) -> Any:
    return page.locator(f"li.item[data-id='{request_id}'] .row")


def current_id(page: Any) -> str:
    return page.locator("li.item.current").get_attribute("data-id")


def test_keyboard_only_review_of_three_requests(page, live_url, agent_key, alice, artifacts_dir):
    ids = [
        submit(live_url, agent_key, summary=f"Request {n}", params={"to": f"c{n}@example.org", "n": n})["id"]
        for n in range(3)
    ]
    # All three share a deadline order: the first submitted is first in the queue.
    log_in(page, "alice")
    expect(page.locator("li.item")).to_have_count(3)
    assert current_id(page) == ids[0]
    page.screenshot(path=str(artifacts_dir / "queue-three.png"), full_page=True)

    page.keyboard.press("j")
    assert current_id(page) == ids[1]
    page.keyboard.press("k")
    assert current_id(page) == ids[0]

    # 1. approve as proposed
    page.keyboard.press("a")
    expect(page.locator(f"li.item[data-id='{ids[0]}']")).to_have_count(0)
    expect(page.locator("li.item.current")).to_have_attribute("data-id", ids[1])

    # 2. reject: the category picker takes focus, Tab to the reason, Enter sends
    page.keyboard.press("r")
    category = card(page, ids[1]).locator("select.reason-category")
    expect(category).to_be_focused()
    category.press("ArrowDown")  # keyboard: first category
    page.keyboard.press("Tab")
    expect(card(page, ids[1]).locator("input.reason")).to_be_focused()
    page.keyboard.type("Wrong customer: c1 asked nothing")
    page.keyboard.press("Enter")
    expect(page.locator(f"li.item[data-id='{ids[1]}']")).to_have_count(0)

    # 3. edit: the first field takes focus, Enter reviews the diff, Enter on the focused confirm approves
    page.keyboard.press("e")
    editor = card(page, ids[2]).locator("textarea.params-editor")
    expect(editor).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type('{"to": "c2@example.org", "n": 20}')
    page.keyboard.press("Tab")  # leave the textarea: the focused "Review changes" button
    page.keyboard.press("Enter")
    expect(card(page, ids[2]).locator("table.diff")).to_contain_text("20")
    expect(card(page, ids[2]).get_by_role("button", name="Approve with these edits")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("li.item")).to_have_count(0)

    statuses = {str(r.id): r for r in ActionRequest.objects.filter(pk__in=ids).select_related("decision")}
    assert statuses[ids[0]].status == Status.APPROVED and not statuses[ids[0]].decision.edited
    assert statuses[ids[1]].status == Status.REJECTED
    assert statuses[ids[1]].decision.reason_category == "wrong_recipient"
    assert statuses[ids[1]].decision.reason == "Wrong customer: c1 asked nothing"
    assert statuses[ids[2]].final_params == {"to": "c2@example.org", "n": 20}


def test_help_lists_the_shortcuts(page, live_url, agent_key, alice):
    log_in(page, "alice")
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    expect(page.locator("#help-dialog")).to_contain_text("Approve the open request")
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()


def test_a_typed_edit_from_the_schema_shows_errors_then_approves_with_a_diff(
    page, live_url, agent_key, alice, artifacts_dir
):
    ActionTypeSchema.objects.create(action_type="send_external_email", params_schema=EMAIL_SCHEMA)
    submitted = submit(
        live_url,
        agent_key,
        params={"to": "customer@example.org", "subject": "Your refund", "body": "On its way.", "priority": "normal"},
    )
    log_in(page, "alice")
    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()
    request_card.screenshot(path=str(artifacts_dir / "card.png"))

    request_card.get_by_role("button", name="Edit").click()
    form = request_card.locator("form.edit-form")
    # The form comes from the schema: an email input, an enum as a select, a number with bounds.
    expect(form.locator("input[type=email]")).to_have_value("customer@example.org")
    expect(form.locator("select")).to_have_count(1)
    expect(form.locator("input[type=number]")).to_have_attribute("max", "5")

    form.get_by_label("to").fill("not an email")
    form.get_by_label("subject").fill("Hi")
    form.get_by_role("button", name="Review changes").click()
    expect(form.locator(".field-error").filter(has_text="Not an email address.")).to_have_count(1)
    expect(form.locator(".field-error").filter(has_text="At least 3 characters.")).to_have_count(1)
    expect(request_card.locator("table.diff")).to_be_hidden()
    assert ActionRequest.objects.get(pk=submitted["id"]).status == Status.PENDING

    form.get_by_label("to").fill("billing@example.org")
    form.get_by_label("subject").fill("Your refund, corrected")
    form.locator("select").select_option(label="urgent")
    form.get_by_label("copies").fill("3")
    form.get_by_role("button", name="Review changes").click()
    request_card.get_by_role("button", name="Approve with these edits").click()
    # Refused by the server against the same schema; the message lands on the field.
    expect(form.locator(".field-error").filter(has_text="multiple of 2")).to_have_count(1)
    assert ActionRequest.objects.get(pk=submitted["id"]).status == Status.PENDING

    form.get_by_label("copies").fill("2")
    form.get_by_role("button", name="Review changes").click()
    diff = request_card.locator("table.diff")
    expect(diff).to_be_visible()
    expect(diff.locator("tr.changed")).to_have_count(3)
    expect(diff.locator("tr.added")).to_have_count(1)
    expect(diff).to_contain_text("customer@example.org")
    expect(diff).to_contain_text("billing@example.org")
    request_card.screenshot(path=str(artifacts_dir / "edit-diff.png"))
    request_card.get_by_role("button", name="Approve with these edits").click()

    expect(request_card).to_have_count(0)
    decided = ActionRequest.objects.get(pk=submitted["id"])
    assert decided.status == Status.APPROVED
    assert decided.final_params == {
        "to": "billing@example.org",
        "subject": "Your refund, corrected",
        "body": "On its way.",
        "priority": "urgent",
        "copies": 2,
    }


def test_claiming_is_seen_live_in_another_browser_and_released_when_the_reviewer_leaves(
    new_page, live_url, agent_key, alice, bob
):
    first = submit(live_url, agent_key, summary="First")
    second = submit(live_url, agent_key, summary="Second")
    alice_page = new_page()
    bob_page = new_page()
    log_in(bob_page, "bob")
    # Bob opened the first card on arrival; Alice's page skips it and opens the next unclaimed one.
    expect(row(bob_page, first["id"]).locator(".claim-badge")).to_have_text("you are reviewing")
    log_in(alice_page, "alice")
    expect(row(alice_page, first["id"]).locator(".claim-badge")).to_have_text("bob is reviewing")
    expect(alice_page.locator("li.item.current")).to_have_attribute("data-id", second["id"])
    expect(row(bob_page, second["id"]).locator(".claim-badge")).to_have_text("alice is reviewing")

    # Alice looks at Bob's card anyway: she is told, and may still decide.
    row(alice_page, first["id"]).locator("button.open").click()
    expect(card(alice_page, first["id"]).locator(".claim-note")).to_contain_text("Being reviewed by bob")
    expect(row(bob_page, second["id"]).locator(".claim-badge")).to_be_hidden()  # she let go of the second

    bob_page.context.close()  # Bob leaves: his claim goes with him
    expect(row(alice_page, first["id"]).locator(".claim-badge")).to_have_text("you are reviewing", timeout=15_000)
    expect(card(alice_page, first["id"]).locator(".claim-note")).to_be_hidden()


def test_a_decision_on_a_request_that_expired_while_open_is_refused_with_the_reason(page, live_url, agent_key, alice):
    Policy.objects.create(action_pattern="send_external_email", mode="approve", priority=100, pending_ttl_seconds=3)
    policy_version_record(actor=None, note="a three-second deadline for this test")
    submitted = submit(live_url, agent_key)
    log_in(page, "alice")
    request_card = card(page, submitted["id"])
    expect(request_card).to_be_visible()
    deadline = ActionRequest.objects.get(pk=submitted["id"]).expires_at
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.3)

    # No sweep ran: the card is still there, and the page says the deadline passed.
    expect(request_card.locator(".card-status")).to_contain_text("deadline has passed")
    request_card.get_by_role("button", name="Approve", exact=True).click()

    expect(request_card.locator(".card-status")).to_contain_text("Too late to approve: this request expired")
    assert ActionRequest.objects.get(pk=submitted["id"]).status == Status.PENDING  # not approved, ever
    assert not Decision.objects.filter(request_id=submitted["id"]).exists()


def test_a_dropped_socket_reconnects_and_resynchronises_without_lost_or_ghost_cards(
    page, live_url, agent_key, alice, bob
):
    link = {"down": False, "sockets": []}

    def route(ws: Any) -> None:
        if link["down"]:
            ws.close()
            return
        ws.connect_to_server()
        link["sockets"].append(ws)

    page.route_web_socket("**/ws/queue/", route)
    staying = submit(live_url, agent_key, summary="Still pending")
    leaving = submit(live_url, agent_key, summary="Decided while the page was offline")
    log_in(page, "alice")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("li.item")).to_have_count(2)

    link["down"] = True
    link["sockets"][0].close()
    expect(page.locator("#live-banner")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "off")

    # While the page hears nothing, one request arrives and another is decided elsewhere.
    arrived = submit(live_url, agent_key, summary="Arrived while the page was offline")
    run_in_thread(action_request_decide, request_id=leaving["id"], reviewer=bob, approve=True)
    page.wait_for_timeout(300)
    expect(page.locator(f"li.item[data-id='{leaving['id']}']")).to_have_count(1)  # stale until resync

    link["down"] = False
    expect(page.locator("body")).to_have_attribute("data-live", "on", timeout=20_000)
    expect(page.locator("#live-banner")).to_be_hidden()
    expect(page.locator(f"li.item[data-id='{arrived['id']}']")).to_have_count(1)
    expect(page.locator(f"li.item[data-id='{leaving['id']}']")).to_have_count(0)
    expect(page.locator(f"li.item[data-id='{staying['id']}']")).to_have_count(1)
    expect(page.locator("li.item")).to_have_count(2)
    expect(page.locator("#queue-count")).to_have_text("2")
    assert page.evaluate("window.__notReloaded") is True


def test_batch_approve_of_selected_cards_of_one_action_type(page, live_url, agent_key, alice, artifacts_dir):
    emails = [submit(live_url, agent_key, summary=f"Email {n}")["id"] for n in range(3)]
    other = submit(
        live_url, agent_key, **submission_body(action_type="close_ticket", summary="Close ticket", params={"id": 7})
    )["id"]
    log_in(page, "alice")
    expect(page.locator("li.item")).to_have_count(4)

    for request_id in [*emails, other]:
        row(page, request_id).locator("input.select").check()
    expect(page.locator("#batch-count")).to_contain_text("batch decisions need one action type")
    expect(page.locator("#batch-approve")).to_be_disabled()
    row(page, other).locator("input.select").uncheck()
    expect(page.locator("#batch-count")).to_have_text("3 requests selected")

    page.locator("#batch-approve").click()
    dialog = page.locator("#batch-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#batch-title")).to_have_text("Approve 3 requests of send_external_email?")
    expect(dialog.locator("#batch-list li")).to_have_count(3)
    expect(dialog).to_contain_text("Email 2")
    page.screenshot(path=str(artifacts_dir / "batch-confirm.png"))
    dialog.get_by_role("button", name="Approve all 3").click()

    expect(page.locator("li.item")).to_have_count(1)
    expect(page.locator("#flash")).to_contain_text("Approved 3 requests.")
    assert set(ActionRequest.objects.filter(pk__in=emails).values_list("status", flat=True)) == {Status.APPROVED}
    assert ActionRequest.objects.get(pk=other).status == Status.PENDING


def test_filters_and_search_narrow_the_queue_and_show_counts(page, live_url, agent_key, alice):
    submit(live_url, agent_key, summary="Refund for Dana")
    submit(live_url, agent_key, summary="Refund for Eli")
    submit(live_url, agent_key, **submission_body(action_type="close_ticket", summary="Close 9", params={"id": 9}))
    log_in(page, "alice")
    expect(page.locator("li.item")).to_have_count(3)
    expect(page.locator("#f-action_type option")).to_have_text(
        ["All action types", "send_external_email (2)", "close_ticket (1)"]
    )

    page.locator("#f-action_type").select_option("close_ticket")
    expect(page.locator("li.item")).to_have_count(1)
    expect(page.locator("#queue-count")).to_have_text("1")
    assert "action_type=close_ticket" in page.url

    page.locator("#f-action_type").select_option("")
    expect(page.locator("li.item")).to_have_count(3)
    page.keyboard.press("/")
    page.keyboard.type("eli")
    expect(page.locator("li.item")).to_have_count(1)
    expect(page.locator("li.item .line")).to_have_text("Refund for Eli")


RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body, tag: (options || {}).tag }); }
  static get permission() { return window.__permission || "default"; }
  static requestPermission() { window.__permission = "granted"; return Promise.resolve("granted"); }
};
"""


def test_notifications_are_opt_in_count_unread_in_the_title_and_remind_near_the_deadline(
    page, live_url, agent_key, alice
):
    page.add_init_script(RECORD_NOTIFICATIONS)
    page.clock.install()
    log_in(page, "alice")
    submit(live_url, agent_key, summary="Before opting in")
    expect(page.locator("li.item")).to_have_count(1)
    assert page.evaluate("window.__notes") == []  # nothing until the reviewer asks for it

    page.get_by_role("button", name="Enable notifications").click()
    expect(page.locator("#notify-toggle")).to_have_attribute("aria-pressed", "true")

    # The reviewer is in another tab: arrivals count in the title and notify.
    page.evaluate(
        """() => { Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
                   document.dispatchEvent(new Event("visibilitychange")); }"""
    )
    soon = submit(live_url, agent_key, summary="Refund in a hurry")
    submit(live_url, agent_key, summary="Second arrival")
    expect(page).to_have_title("(2) Queue · Countersign")
    notes = page.evaluate("window.__notes")
    assert [note["title"] for note in notes] == ["New: send_external_email"] * 2
    assert "Refund in a hurry (support-bot)" in notes[0]["body"]

    page.evaluate(
        """() => { Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
                   document.dispatchEvent(new Event("visibilitychange")); }"""
    )
    expect(page).to_have_title("Queue · Countersign")

    # Four hours later, five minutes before the deadline, each undecided request reminds once.
    page.clock.fast_forward("03:56:00")
    page.clock.run_for(2000)
    reminders = [n for n in page.evaluate("window.__notes") if n["title"].startswith("Deadline near")]
    assert soon["id"] + ":reminder" in {n["tag"] for n in reminders}
    assert len(reminders) == 3
    page.clock.run_for(5000)
    assert len([n for n in page.evaluate("window.__notes") if n["title"].startswith("Deadline near")]) == 3
    expect(page.locator(f"li.item[data-id='{soon['id']}'] .row .countdown")).to_have_class("countdown urgent")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_queue_fits_a_phone_in_light_and_dark(browser, live_url, agent_key, alice, artifacts_dir, scheme):
    context = browser.new_context(
        base_url=live_url, viewport={"width": 390, "height": 844}, color_scheme=scheme, is_mobile=True
    )
    try:
        page = context.new_page()
        submit(live_url, agent_key, summary="A fairly long summary that has to wrap on a narrow phone screen")
        submit(live_url, agent_key, summary="Second request")
        log_in(page, "alice")
        expect(page.locator("li.item")).to_have_count(2)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(18, 21, 27)") == (scheme == "dark"), background
        expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
        page.screenshot(path=str(artifacts_dir / f"queue-phone-{scheme}.png"), full_page=True)
        # Every control a screen reader reaches has a name (a label, aria-label or its own text).
        unnamed = page.evaluate(
            """Array.from(document.querySelectorAll("main button, main input, main select, main textarea, main a"))
                .filter((node) => !node.closest("[hidden], dialog:not([open])"))
                .filter((node) => !((node.labels && node.labels.length) || node.getAttribute("aria-label")
                                    || node.textContent.trim() || node.getAttribute("placeholder")))
                .map((node) => node.outerHTML.slice(0, 120))"""
        )
        assert unnamed == []
    finally:
        context.close()


def test_a_quorum_vote_shows_live_on_every_queue_and_the_voter_cannot_vote_twice(
    new_page, live_url, agent_key, alice, bob
):
    Policy.objects.create(action_pattern="send_external_email", mode="approve", priority=100, required_approvals=2)
    policy_version_record(actor=None, note="two approvals for this test")
    submitted = submit(live_url, agent_key)
    alice_page, bob_page = new_page(), new_page()
    log_in(alice_page, "alice")
    log_in(bob_page, "bob")
    alice_card, bob_card = card(alice_page, submitted["id"]), card(bob_page, submitted["id"])
    expect(bob_card.locator(".quorum")).to_have_text("Approvals 0 of 2.")
    expect(alice_card.get_by_role("button", name="Edit")).to_be_disabled()  # all approvers see the same params

    alice_card.get_by_role("button", name="Approve", exact=True).click()

    expect(alice_page.locator("#flash")).to_contain_text("Vote recorded")
    expect(alice_card.locator(".quorum")).to_have_text("Approvals 1 of 2: alice.")
    expect(alice_card.get_by_role("button", name="You approved: waiting for another reviewer")).to_be_disabled()
    expect(bob_card.locator(".quorum")).to_have_text("Approvals 1 of 2: alice.")  # live, no reload
    assert ActionRequest.objects.get(pk=submitted["id"]).status == Status.PENDING

    bob_card.get_by_role("button", name="Approve", exact=True).click()

    expect(bob_card).to_have_count(0)
    expect(alice_card).to_have_count(0)
    assert ActionRequest.objects.get(pk=submitted["id"]).status == Status.APPROVED
