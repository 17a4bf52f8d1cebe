"""Web Push in Chromium: the settings page registers the service worker, and its Approve action decides.

Headless Chromium has no push service to subscribe to offline, so the browser part covers what
runs in the browser: the worker's registration from /sw.js (scope: the whole site) and the code a
notification's Approve click runs inside the worker, called with a payload exactly as the server
sends it (``push_payload``). The encryption and delivery to a push service are tested in
tests/reviewers/test_push.py.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from approvals.models import ActionRequest
from approvals.push import push_payload
from tests.e2e.conftest import log_in, submit_pending

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def vapid(settings, live_url):
    out = io.StringIO()
    call_command("generate_vapid_keys", stdout=out)
    for line in out.getvalue().split():
        name, value = line.split("=", 1)
        setattr(settings, name, value)
    settings.COUNTERSIGN_PUBLIC_URL = live_url


def test_the_service_worker_registers_and_its_approve_action_decides_as_the_reviewer(
    browser, live_url, vapid, alice, agent
):
    context = browser.new_context(base_url=live_url)
    context.set_default_timeout(10_000)
    context.grant_permissions(["notifications"], origin=live_url)
    try:
        page = context.new_page()
        log_in(page, "alice")
        page.goto("/queue/push/")
        expect(page.locator("#push-settings")).to_have_attribute("data-worker", "registered")
        assert page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == f"{live_url}/"
        worker = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
        assert worker.url == f"{live_url}/sw.js"

        request = submit_pending(agent)
        payload = push_payload(request, kind="new", user_id=alice.pk)
        assert worker.evaluate("data => self.approveFromNotification(data)", payload) == "Approved"
        request.refresh_from_db()
        assert (request.status, request.decision.surface, request.decision.reviewer_id) == (
            "approved",
            "push",
            alice.pk,
        )

        # The same action again, or one for a changed request, tells the reviewer why nothing happened.
        again = worker.evaluate("data => self.approveFromNotification(data)", payload)
        assert again.startswith("Already decided by alice")
        changed = submit_pending(agent)
        stale = push_payload(changed, kind="new", user_id=alice.pk)
        ActionRequest.objects.filter(pk=changed.pk).update(revision=2)
        assert "changed" in worker.evaluate("data => self.approveFromNotification(data)", stale)
        assert ActionRequest.objects.get(pk=changed.pk).status == "pending"
    finally:
        context.close()
