"""The release gate (issue 15): stable version pairs pass, a shifted one fails within 60 decisions, too little data says so."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import ActionRequest, AgentKey
from approvals.services import Submission, action_request_submit, agent_create
from evaluation.models import SCOPE_EVALUATION_READ
from evaluation.release_gate import release_gate
from evaluation.services import agent_key_scope_grant
from tests.evaluation.synthetic import Case, write_history


def cases(n: int, *, rejection: float, rng: random.Random, expiry: float = 0.02, edit: float = 0.1) -> list[Case]:
    out = []
    for _ in range(n):
        draw = rng.random()
        outcome = "rejected" if draw < rejection else ("expired" if draw < rejection + expiry else "approved")
        out.append(
            Case(outcome=outcome, edited=outcome == "approved" and rng.random() < edit, seconds=rng.uniform(30, 90))
        )
    return out


def version(agent, name: str, history: list[Case], start) -> None:
    write_history(agent=agent, action_type="send_external_email", cases=history, start=start)
    ActionRequest.objects.filter(agent=agent, agent_version="").update(agent_version=name)


def test_twenty_stable_version_pairs_all_pass(db):
    rng = random.Random(20)
    verdicts = []
    for pair in range(20):
        agent, _ = agent_create(name=f"stable-{pair}")
        start = timezone.now() - timedelta(days=3)
        version(agent, "v1", cases(300, rejection=0.05, rng=rng), start)
        version(agent, "v2", cases(rng.randint(60, 150), rejection=0.05, rng=rng), start + timedelta(days=1))
        verdicts.append(release_gate(agent=agent, baseline="v1", candidate="v2").verdict)
    assert verdicts == ["pass"] * 20


def test_a_rejection_rate_going_from_5_to_40_percent_fails_within_60_decisions(db):
    rng = random.Random(40)
    agent, _ = agent_create(name="shifted")
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1", cases(300, rejection=0.05, rng=rng), start)
    version(agent, "v2", cases(60, rejection=0.40, rng=rng, expiry=0.0), start + timedelta(days=1))

    report = release_gate(agent=agent, baseline="v1", candidate="v2")

    assert report.candidate_decisions <= 60
    assert report.verdict == "fail"
    rejection = next(check for check in report.checks if check.name == "rejection_rate")
    assert rejection.verdict == "fail"
    assert rejection.baseline == pytest.approx(0.05, abs=0.03) and rejection.candidate == pytest.approx(0.4, abs=0.1)
    assert "rejection_rate" in report.reason


def test_a_candidate_with_too_few_decisions_is_not_enough_data_yet(db):
    rng = random.Random(1)
    agent, _ = agent_create(name="new")
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1", cases(300, rejection=0.05, rng=rng), start)
    version(agent, "v2", cases(12, rejection=0.5, rng=rng), start + timedelta(days=1))

    report = release_gate(agent=agent, baseline="v1", candidate="v2")

    assert report.verdict == "insufficient_data"
    assert "Not enough data yet" in report.reason


def test_time_to_decide_doubling_fails_the_gate(db):
    rng = random.Random(3)
    agent, _ = agent_create(name="slow")
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1", cases(300, rejection=0.05, rng=rng), start)
    slow = [Case(outcome=c.outcome, edited=c.edited, seconds=c.seconds * 4) for c in cases(80, rejection=0.05, rng=rng)]
    version(agent, "v2", slow, start + timedelta(days=1))

    report = release_gate(agent=agent, baseline="v1", candidate="v2")

    assert [check.name for check in report.checks if check.verdict == "fail"] == ["time_to_decide"]


def test_the_agents_version_is_kept_from_its_context(agent, default_policies):
    request = action_request_submit(
        agent=agent,
        submission=Submission(
            action_type="search_web", params={}, summary="s", evidence=[], context={"agent_version": " v7 "}
        ),
    ).request
    assert request.agent_version == "v7"


# --- the API --------------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(db):
    rng = random.Random(5)
    agent, key = agent_create(name="gated")
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1", cases(100, rejection=0.05, rng=rng), start)
    version(agent, "v2", cases(40, rejection=0.05, rng=rng), start + timedelta(days=1))
    return agent, key


def as_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


URL = "/api/v1/release-gate/?agent=gated&baseline=v1&candidate=v2"


def test_staff_read_the_gate_with_every_check(client, admin_user, two_versions):
    client.force_login(admin_user)
    body = client.get(URL).json()
    assert body["verdict"] == "pass"
    assert body["candidate_decisions"] >= 30
    assert {check["name"] for check in body["checks"]} == {
        "escalation_rate",
        "blocked_rate",
        "approval_rate",
        "rejection_rate",
        "edit_rate",
        "expiry_rate",
        "execution_failure_rate",
        "time_to_decide",
    }


def test_an_agent_key_needs_the_evaluation_read_scope(two_versions):
    agent, key = two_versions
    assert as_key(key).get(URL).status_code == 403
    agent_key_scope_grant(key=AgentKey.objects.get(agent=agent), scope=SCOPE_EVALUATION_READ)
    assert as_key(key).get(URL).json()["verdict"] == "pass"


def test_a_reviewer_who_is_not_staff_is_refused(client, alice, two_versions):
    client.force_login(alice)
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_unknown_agents_unknown_versions_and_missing_parameters_are_clear_errors(client, admin_user, two_versions):
    client.force_login(admin_user)
    unknown_agent = client.get("/api/v1/release-gate/?agent=nobody&baseline=v1&candidate=v2")
    assert (unknown_agent.status_code, unknown_agent.json()["error"]["code"]) == (404, "not_found")
    unknown_version = client.get("/api/v1/release-gate/?agent=gated&baseline=v1&candidate=v9")
    assert unknown_version.status_code == 404
    assert unknown_version.json()["error"]["details"]["known_versions"] == ["v1", "v2"]
    missing = client.get("/api/v1/release-gate/?agent=gated")
    assert missing.status_code == 422 and missing.json()["error"]["details"]["missing"] == ["baseline", "candidate"]
    same = client.get("/api/v1/release-gate/?agent=gated&baseline=v1&candidate=v1")
    assert same.status_code == 422
