"""Agent-supplied text is untrusted everywhere a reviewer sees it: queue rows, the open card,
browser notifications, the history page and a request's own page. A corpus of hostile
strings goes into every agent-controlled field; in headless Chromium nothing runs, and
no ``javascript:`` (or other non-http) evidence URL becomes a link.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from approvals.models import ActionRequest
from approvals.services import action_request_decide, agent_create
from policies.services import policies_load_defaults
from tests.e2e.conftest import log_in, run_in_thread, submit

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

# Each payload, if it ever ran, would set window.__xss or open a dialog.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=1>",
    "<svg onload=window.__xss=1>",
    '"><script>window.__xss=1</script>',
    "'><img src=x onerror=window.__xss=1>",
    "</script><script>window.__xss=1</script>",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '<a href="javascript:window.__xss=1">click</a>',
    "<body onload=window.__xss=1>",
    "<details open ontoggle=window.__xss=1>",
    "<input autofocus onfocus=window.__xss=1>",
    "<video><source onerror=window.__xss=1></video>",
    '<object data="javascript:window.__xss=1"></object>',
    '<embed src="javascript:window.__xss=1">',
    "<marquee onstart=window.__xss=1>x</marquee>",
    "<form><button formaction=javascript:window.__xss=1>go</button></form>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    '<!--<img src="--><img src=x onerror=window.__xss=1//">',
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    '<base href="javascript:/">',
    "<style>@import 'javascript:window.__xss=1';</style>",
    "{{constructor.constructor('window.__xss=1')()}}",
    "${window.__xss=1}",
    "\u2028<script>window.__xss=1</script>",
    "<img src=x onerror=&#119;indow.__xss=1>",
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    '<div style="background:url(javascript:window.__xss=1)">x</div>',
    "<isindex type=image src=1 onerror=window.__xss=1>",
    "<textarea></textarea><script>window.__xss=1</script>",
    "<a href=# onclick=alert(1)>x</a><img src=x onerror=alert(1)>",
]
# Evidence URLs: none of these may become a link.
HOSTILE_URLS = [
    "javascript:window.__xss=1",
    "JaVaScRiPt:window.__xss=1",
    " javascript:window.__xss=1",
    "java\tscript:window.__xss=1",
    "data:text/html,<script>window.__xss=1</script>",
    "vbscript:msgbox(1)",
    "&#106;avascript:window.__xss=1",
    "//evil.example/<script>",
]

RECORD_NOTIFICATIONS = """
window.__notes = [];
class RecordingNotification {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body }); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
}
window.Notification = RecordingNotification;
localStorage.setItem("countersign.notify", "on");
"""


def hostile_submission(n: int) -> dict[str, Any]:
    payload = PAYLOADS[n % len(PAYLOADS)]
    return {
        "action_type": "send_external_email",
        "summary": f"{n} {payload}",
        "params": {payload: payload, "to": payload, "nested": {payload: [payload]}},
        "evidence": [
            {"title": payload, "url": HOSTILE_URLS[n % len(HOSTILE_URLS)], "excerpt": payload},
            {"title": f"safe {n}", "url": "https://tickets.example/1", "excerpt": payload},
        ],
        "context": {"trace_id": payload},
    }


def assert_nothing_ran(page: Any, dialogs: list[str], where: str) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", f"a payload ran in {where}"
    assert dialogs == [], f"a dialog opened in {where}: {dialogs}"
    hrefs = page.evaluate("Array.from(document.querySelectorAll('main a[href]')).map((a) => a.href)")
    bad = [href for href in hrefs if not href.startswith(("http://", "https://"))]
    assert bad == [], f"non-http links in {where}: {bad}"
    injected = page.evaluate(
        "Array.from(document.querySelectorAll('main img, main iframe, main svg, main object, main embed,"
        " main video, main marquee, main math, main details, main base, main meta, main style,"
        ' main script:not([type="application/json"])\')).map((n) => n.outerHTML.slice(0, 200))'
    )
    assert injected == [], f"agent markup became elements in {where}: {injected}"


def test_a_corpus_of_hostile_agent_text_runs_nowhere_a_reviewer_looks(new_page, live_url, alice, bob):
    policies_load_defaults()
    assert len(PAYLOADS) >= 30
    keys = [agent_create(name=f"agent {payload}")[1] for payload in PAYLOADS[:8]]
    decided = []
    for n in range(len(PAYLOADS)):
        submitted = submit(live_url, keys[n % len(keys)], **hostile_submission(n))
        if n % 2:
            decided.append(submitted["id"])
    for n, request_id in enumerate(decided):
        payload = PAYLOADS[n % len(PAYLOADS)]
        if n % 3 == 0:
            run_in_thread(
                action_request_decide,
                request_id=request_id,
                reviewer=bob,
                approve=False,
                reason=payload,
                reason_category="unsafe",
                note=payload,
            )
        else:
            run_in_thread(
                action_request_decide,
                request_id=request_id,
                reviewer=bob,
                approve=True,
                final_params={"to": payload, payload: "edited"},
                note=payload,
            )

    page = new_page()
    page.add_init_script(RECORD_NOTIFICATIONS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, "alice")

    # Live arrivals go through the websocket renderer and the notifications.
    for n in range(3):
        submit(live_url, keys[n], **hostile_submission(100 + n))
    pending = ActionRequest.objects.filter(status="pending").count()
    expect(page.locator("li.item")).to_have_count(pending)

    # Open every card: the full renderer (params, evidence, meta, history line) runs for each.
    first = page.locator("li.item").first.get_attribute("data-id")
    page.locator(f"li.item[data-id='{first}'] button.open").focus()
    page.locator("body").press("Escape")
    for _ in range(pending):
        page.keyboard.press("j")
        expect(page.locator("li.item.current article.card")).to_be_visible()
    expect(page.locator("#queue")).to_contain_text(PAYLOADS[0])
    expect(page.locator("#queue")).to_contain_text("javascript:window.__xss=1 (not a web link)")
    assert_nothing_ran(page, dialogs, "the queue")

    notes = page.evaluate("window.__notes")
    assert len(notes) >= 3
    assert any(PAYLOADS[100 % len(PAYLOADS)] in note["body"] for note in notes)  # shown as the text it is

    page.goto("/queue/history/")
    expect(page.locator("main")).to_contain_text(PAYLOADS[1])
    assert_nothing_ran(page, dialogs, "the history page")

    for request_id in decided[:6]:
        page.goto(f"/queue/requests/{request_id}/")
        expect(page.locator("main")).to_contain_text("window.__xss=1")
        assert_nothing_ran(page, dialogs, f"the page of request {request_id}")
