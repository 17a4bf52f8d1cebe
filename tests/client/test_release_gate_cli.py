"""`countersign release-gate` against the live gateway: its exit code is the verdict (issue 15)."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
from countersign_client import Countersign
from countersign_client.cli import main
from django.utils import timezone

from approvals.models import ActionRequest, AgentKey
from approvals.services import agent_create
from evaluation.models import SCOPE_EVALUATION_READ
from evaluation.services import agent_key_scope_grant
from tests.client.conftest import EMAIL
from tests.evaluation.test_release_gate import cases, version


@pytest.fixture
def gated(transactional_db):
    rng = random.Random(9)
    agent, key = agent_create(name="gated-bot")
    agent_key_scope_grant(key=AgentKey.objects.get(agent=agent), scope=SCOPE_EVALUATION_READ)
    start = timezone.now() - timedelta(days=3)
    version(agent, "v1", cases(300, rejection=0.05, rng=rng), start)
    version(agent, "v2-good", cases(80, rejection=0.05, rng=rng), start + timedelta(days=1))
    version(agent, "v2-bad", cases(60, rejection=0.40, rng=rng, expiry=0.0), start + timedelta(days=2))
    version(agent, "v2-new", cases(5, rejection=0.05, rng=rng), start + timedelta(days=2, hours=1))
    return key


def run(live_url: str, key: str, candidate: str, **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    os.environ["CS_TEST_KEY"] = key
    try:
        code = main(
            [
                "release-gate",
                "--agent",
                "gated-bot",
                "--baseline",
                "v1",
                "--candidate",
                candidate,
                "--url",
                live_url,
                "--api-key-env",
                "CS_TEST_KEY",
            ],
            out=out,
            err=err,
        )
    finally:
        del os.environ["CS_TEST_KEY"]
    return code, out.getvalue(), err.getvalue()


def test_a_stable_candidate_passes_with_exit_0(live_url, gated):
    code, out, _ = run(live_url, gated, "v2-good")
    assert code == 0
    assert "PASS:" in out and "rejection_rate" in out


def test_a_worse_candidate_fails_with_exit_1_and_says_on_what(live_url, gated):
    code, out, _ = run(live_url, gated, "v2-bad")
    assert code == 1
    assert "FAIL: v2-bad is significantly worse than v1 on: " in out and "rejection_rate" in out


def test_too_few_decisions_exit_2(live_url, gated):
    code, out, _ = run(live_url, gated, "v2-new")
    assert code == 2
    assert "Not enough data yet" in out


def test_an_unknown_version_an_unreachable_gateway_or_a_key_without_the_scope_exit_3(live_url, gated):
    code, _, err = run(live_url, gated, "v9")
    assert code == 3 and "404" in err and "v9" in err
    _, plain_key = agent_create(name="no-scope-bot")
    code, _, err = run(live_url, plain_key, "v2-good")
    assert code == 3 and "403" in err
    code, _, err = run("http://127.0.0.1:9", gated, "v2-good")
    assert code == 3 and "Could not reach" in err


def test_the_installed_command_exits_with_the_verdict(live_url, gated):
    command = shutil.which("countersign") or os.path.join(os.path.dirname(sys.executable), "countersign")
    finished = subprocess.run(
        [command, "release-gate", "--agent", "gated-bot", "--baseline", "v1", "--candidate", "v2-bad"],
        env={**os.environ, "COUNTERSIGN_URL": live_url, "COUNTERSIGN_API_KEY": gated},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1, finished.stderr


def test_the_client_sends_its_configured_agent_version(live_url, transactional_db, monkeypatch):
    from policies.services import policies_load_defaults

    policies_load_defaults()
    _, key = agent_create(name="versioned-bot")
    with Countersign(live_url, key, agent_version="v3.1") as gate:
        first = gate.submit("send_external_email", EMAIL)
    monkeypatch.setenv("COUNTERSIGN_AGENT_VERSION", "v3.2")
    with Countersign(live_url, key) as gate:
        second = gate.submit("send_external_email", {**EMAIL, "subject": "Another"})
        own = gate.submit("send_external_email", {**EMAIL, "subject": "Own"}, context={"agent_version": "mine"})
    versions = {str(pk): version for pk, version in ActionRequest.objects.values_list("id", "agent_version")}
    assert [versions[action.id] for action in (first, second, own)] == ["v3.1", "v3.2", "mine"]
