"""The release gate's report on the dashboard, in headless Chromium (issue 15); a screenshot is saved.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest -m browser -p no:asyncio FILE
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals.services import agent_create
from reviewers.services import reviewer_create
from tests.e2e.conftest import PASSWORD
from tests.evaluation.test_release_gate import cases, version

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_staff_compare_two_versions_and_see_which_checks_fail(page, artifacts_dir):
    rng = random.Random(11)
    agent, _ = agent_create(name="support-bot")
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1.4.0", cases(300, rejection=0.05, rng=rng), start)
    version(agent, "v1.5.0", cases(60, rejection=0.40, rng=rng, expiry=0.0), start + timedelta(days=1))
    staff = reviewer_create(username="olga", password=PASSWORD)
    staff.is_staff = True
    staff.save()

    page.goto("/accounts/login/?next=/dashboard/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.get_by_role("link", name="release gate").click()
    page.get_by_label("Agent").select_option("support-bot")
    page.get_by_role("button", name="Show versions").click()
    page.get_by_label("Baseline").select_option("v1.4.0")
    page.get_by_label("Candidate").select_option("v1.5.0")
    page.get_by_role("button", name="Compare").click()

    expect(page.locator("h2.verdict")).to_have_text("FAIL")
    expect(page.locator("tr[data-check='rejection_rate']")).to_have_attribute("data-verdict", "fail")
    expect(page.locator("tr[data-check='time_to_decide']")).to_have_attribute("data-verdict", "pass")
    page.screenshot(path=str(artifacts_dir / "release-gate.png"), full_page=True)
