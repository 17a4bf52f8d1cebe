"""The policy editing experience in headless Chromium; screenshots saved as test artifacts.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio tests/e2e/test_policy_admin_browser.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from policies.models import Policy
from tests.conftest import PASSWORD
from tests.factories import AgentFactory, PendingRequestFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def admin_log_in(page: Any) -> None:
    UserFactory(username="policy-admin", is_staff=True, is_superuser=True)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "policy-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_invalid_condition_shows_the_compiler_error_next_to_the_field(page: Any, artifacts_dir: Path) -> None:
    admin_log_in(page)
    page.goto("/admin/policies/policy/add/")
    page.fill("#id_action_pattern", "execute_financial_action")
    page.select_option("#id_mode", "approve")
    page.fill("#id_condition", "params.amount >")
    page.fill("#id_change_note", "Big refunds need a human.")
    page.click("input[name=_save]")

    error = page.locator(".field-condition .errorlist")
    expect(error).to_contain_text("Syntax error")
    page.screenshot(path=str(artifacts_dir / "policy-admin-invalid-condition.png"), full_page=True)
    assert not Policy.objects.exists()


def test_simulation_page_shows_its_table_of_changes(page: Any, artifacts_dir: Path) -> None:
    agent = AgentFactory(name="mailer")
    for index in range(5):
        PendingRequestFactory(agent=agent, params={"to": f"p{index}@example.com"})
    admin_log_in(page)
    page.goto("/policies/simulate/")
    page.fill(
        "#table_yaml",
        "policies:\n"
        "- action_pattern: send_external_email\n"
        "  mode: auto\n"
        '  condition: params.to.endsWith("@example.com")\n',
    )
    page.click("button[value=simulate]")

    table = page.locator("#simulation-table")
    expect(table).to_contain_text("send_external_email")
    expect(table).to_contain_text("approve->auto: 5")
    expect(page.locator("#simulation-summary")).to_contain_text("5 would change mode")
    page.screenshot(path=str(artifacts_dir / "policy-simulation.png"), full_page=True)
