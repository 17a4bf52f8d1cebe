"""The evaluation dashboard in headless Chromium with seeded history; screenshots saved as artifacts.

Run with: DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/pytest -m browser -p no:asyncio tests/e2e/test_dashboard_browser.py
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.services import agent_create
from evaluation.drift import DriftConfig, drift_detect
from evaluation.models import DriftAlert
from policies.models import Policy
from reviewers.services import reviewer_create
from tests.conftest import PASSWORD
from tests.evaluation.synthetic import Case, write_history

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.fixture
def seeded(transactional_db: None) -> None:
    rng = random.Random(3)
    agent, _ = agent_create(name="support-bot")
    other, _ = agent_create(name="billing-bot")
    # Spread over the last six days, so the requests-per-day chart has days to show.
    start = timezone.now() - timedelta(days=6)
    later = write_history(
        agent=agent,
        action_type="send_external_email",
        start=start,
        step=timedelta(minutes=20),
        cases=[
            Case(outcome="rejected", reason="tone: too blunt") if rng.random() < 0.08 else Case() for _ in range(400)
        ],
    )
    write_history(
        agent=other,
        action_type="issue_refund",
        start=start,
        step=timedelta(minutes=60),
        cases=[Case(edited=rng.random() < 0.3) for _ in range(120)],
    )
    write_history(
        agent=other, action_type="lookup_order", start=start, step=timedelta(minutes=40), cases=[Case()] * 200
    )
    drift_detect(config=DriftConfig())
    write_history(
        agent=agent,
        action_type="send_external_email",
        start=later,
        cases=[Case(outcome="rejected", reason="wrong-recipient: not the customer")] * 5,
    )
    drift_detect(config=DriftConfig())


def sign_in(page: Any, username: str) -> None:
    page.goto("/accounts/login/?next=/dashboard/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def test_dashboard_renders_with_seeded_data_and_drills_down(seeded: None, page: Any, artifacts_dir: Any) -> None:
    reviewer_create(username="alice", password=PASSWORD)
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in(page, "alice")
    assert page.locator("table.metrics tbody tr").count() == 3
    assert page.locator("tr.alert-row").count() == 1
    assert page.locator("svg.eval-chart rect").count() >= 2
    assert page.get_by_text("200 of 200").is_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)

    page.locator("tr.alert-row a").first.click()
    page.wait_for_url("**/dashboard/decisions/?alert=*")
    assert page.locator("tr.decision-row").count() == 5
    page.screenshot(path=str(artifacts_dir / "dashboard-alert-decisions.png"), full_page=True)
    assert csp_errors == []


def test_a_reviewer_acknowledges_an_alert_in_the_dashboard(seeded: None, page: Any, artifacts_dir: Any) -> None:
    reviewer_create(username="alice", password=PASSWORD)
    sign_in(page, "alice")
    row = page.locator("tr.alert-row").first
    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url("**/dashboard/")
    row = page.locator("tr.alert-row").first
    assert "acknowledged by alice" in row.inner_text()
    assert row.get_by_role("button", name="Acknowledge").count() == 0
    page.screenshot(path=str(artifacts_dir / "dashboard-alert-acknowledged.png"), full_page=True)
    assert DriftAlert.objects.get().acknowledged_by.username == "alice"


def test_staff_simulate_relaxing_an_auto_candidate(seeded: None, page: Any, artifacts_dir: Any) -> None:
    get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="root@example.org")
    sign_in(page, "root")
    candidate = page.locator("tr.candidate-row", has_text="lookup_order")
    candidate.get_by_role("button", name="Simulate relaxing").click()
    page.wait_for_url("**/policies/simulate/")
    assert "lookup_order" in page.locator("#simulation-table").inner_text()
    assert "mode: log" in page.locator("#table_yaml").input_value()
    page.screenshot(path=str(artifacts_dir / "dashboard-candidate-simulation.png"), full_page=True)
    assert not Policy.objects.filter(action_pattern="lookup_order").exists(), "simulating applies nothing"
